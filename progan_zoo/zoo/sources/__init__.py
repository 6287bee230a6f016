"""The read side of the zoo: each source returns weights and records, nothing is written here.

- ``checkpoint``: training runs and their checkpoints;
- ``folder``: saved model folders (verified before any tensor is read);
- ``tf_pickle`` (with ``safe_pickle``): the official TF release pickles, read without running them;
- ``fbz``: pytorch_GAN_zoo PGAN checkpoints.
"""
