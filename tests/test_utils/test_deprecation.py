"""The generic classes lost PEP's name; the old names still build, for one
release, as subclasses of the new classes that warn once."""
import pickle
import warnings

import pytest

from mmdet.registry import DATASETS, HOOKS, METRICS, TRANSFORMS
from mmdet_pep import datasets, engine, evaluation
from mmdet_pep.utils.deprecation import deprecated_alias

RENAMED = [
    # old name, new name, registry, where both are exported, arguments
    ('PEPCocoDataset', 'CheckedCocoDataset', DATASETS, datasets,
     dict(ann_file='never_read.json', lazy_init=True, pipeline=[])),
    ('PEPLoadImageFromFile', 'CheckedLoadImageFromFile', TRANSFORMS, datasets,
     dict(bit_depth=12)),
    ('PEPNumClassCheckHook', 'StrictNumClassCheckHook', HOOKS, engine, dict()),
    ('PEPCheckInvalidLossHook', 'StrictCheckInvalidLossHook', HOOKS, engine,
     dict(interval=2)),
    ('PEPYouTubeVISMetric', 'YouTubeVISIDSwitchMetric', METRICS, evaluation,
     dict()),
]


@pytest.mark.parametrize('old,new,registry,package,kwargs',
                         RENAMED,
                         ids=[r[0] for r in RENAMED])
def test_old_name_builds_the_new_class_and_warns_once(old, new, registry,
                                                      package, kwargs,
                                                      monkeypatch):
    new_cls, alias = registry.get(new), registry.get(old)
    assert new_cls.__name__ == new and new_cls.__module__.startswith(
        'mmdet_pep.')
    assert alias is getattr(package, old) and new_cls is getattr(package, new)
    assert alias.__name__ == old and alias.__bases__ == (new_cls, )
    # Only the warning is added (and what Python adds to every class).
    assert {k
            for k in vars(alias)
            if not k.startswith('__')} <= {'_warned', '_abc_impl'}
    # Instances pickle (data loader workers started with spawn).
    assert pickle.loads(pickle.dumps(alias)) is alias

    monkeypatch.setattr(alias, '_warned', False)
    with pytest.warns(FutureWarning, match=f'{old} is deprecated.*{new}'):
        first = registry.build(dict(type=old, **kwargs))
    assert isinstance(first, new_cls)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        registry.build(dict(type=old, **kwargs))  # no second warning
        assert type(registry.build(dict(type=new, **kwargs))) is new_cls


def test_deprecated_alias_keeps_the_arguments():

    class Base:

        def __init__(self, a, b=2):
            self.a, self.b = a, b

    from mmengine.registry import Registry
    registry = Registry('toy')
    registry.register_module(module=Base)
    Old = deprecated_alias(Base, 'Old', registry)
    with pytest.warns(FutureWarning, match='Old is deprecated.*Base'):
        obj = registry.build(dict(type='Old', a=1, b=3))
    assert (obj.a, obj.b, type(obj)) == (1, 3, Old)
