# The runtime of the short iteration-based runs on the embedded synthetic
# set (configs/_base_/schedules/schedule_synthetic.py): log every 20
# iterations, one checkpoint at the end of the 1200 iterations, logs counted
# in iterations.
_base_ = './default_runtime.py'

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    # interval = schedule_synthetic's max_iters (the two are siblings, so it
    # cannot be referenced; tests/test_configs checks that they agree).
    checkpoint=dict(
        type='CheckpointHook', by_epoch=False, interval=1200,
        max_keep_ckpts=2))
log_processor = dict(type='LogProcessor', window_size=20, by_epoch=False)
