# The project's runtime, shared by every config of every method: mmdet's
# default runtime plus this package (which registers PEP and the modules
# below in mmdet's registries) and its runtime hooks.
_base_ = 'mmdet::_base_/default_runtime.py'

# `mim train mmdet CONFIG` runs mmdet's own tools/train.py: this import is
# what makes the PEP model, the checked data set and transforms and the
# hooks below known there. It lives here, in the one base every config
# inherits, because mmengine refuses a key defined by two bases of one config.
custom_imports = dict(imports=['mmdet_pep'], allow_failed_imports=False)

# Start-up and per-iteration checks (mmdet_pep.engine.hooks): num_classes vs.
# every data set before the first iteration; a non-finite loss stops training
# naming the iteration; the RNG state travels with checkpoints so that
# --resume continues exactly. SafeCheckpointHook opts the run in to
# weights-only checkpoints (mmdet_pep.register_checkpoint_safe_globals;
# importing mmdet_pep does not), also under mmdet's tools/train.py, test.py.
custom_hooks = [
    dict(type='SafeCheckpointHook'),
    dict(type='StrictNumClassCheckHook'),
    dict(type='StrictCheckInvalidLossHook', interval=1),
    dict(type='RNGStateHook'),
]
