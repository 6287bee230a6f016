"""What people do with a loaded generator: ONNX / torch.export programs, projection of real images, videos.

Floor 2 beside ``progan_zoo.zoo`` (docs/architecture.md): these modules take a ``ZooGenerator`` from
``progan_zoo.load`` and use the metrics and data below; nothing in ``zoo`` imports them. Their optional
packages live in extras (``onnx``, ``video``) and are imported where used, through ``extras.need``.
"""
