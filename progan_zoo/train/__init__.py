"""The progressive trainer: schedule, losses, the training loop, checkpoints, distributed helpers.

Import the modules directly (``progan_zoo.train.trainer``, ``.checkpoint``, ``.losses``); this
package imports nothing so that ``progan-zoo --help`` does not load torch.
"""
