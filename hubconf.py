"""torch.hub entry points: ``torch.hub.load("progan-zoo/progan-zoo", "load", "mnist-32")``.

From a checkout: ``torch.hub.load(PATH, "load", "mnist-32", source="local")``. ``load`` takes what
``progan_zoo.load`` takes (a registered name, a saved model folder, ``hf-hub:org/name[@rev]``) and
returns the generator (``.sample(n, seed)``, ``G(z)``, ``save_pretrained``, ``push_to_hub``).
"""

dependencies = ["torch", "safetensors", "huggingface_hub", "ruamel.yaml", "pydantic", "networkx", "jsonschema"]


def _package():
    """``progan_zoo``, also from a plain checkout (what torch.hub downloads): pyproject maps ``compiler/``
    and ``specs/`` into the package (``package-dir``), which only an install does; here the checkout's
    root joins the package's search path instead."""
    from pathlib import Path

    import progan_zoo

    try:
        import progan_zoo.compiler  # noqa: F401
    except ImportError:
        progan_zoo.__path__.append(str(Path(__file__).resolve().parent))
    return progan_zoo


def load(name: str = "mnist-32", resolution: int | None = None, device: str | None = None):
    """A zoo generator by name, folder or ``hf-hub:`` reference (see ``progan_zoo.load``)."""
    return _package().load(name, resolution=resolution, device=device)


def list_models(pattern: str | None = None) -> list[str]:
    """The registered names (``pattern`` is a shell wildcard)."""
    return _package().list_models(pattern)
