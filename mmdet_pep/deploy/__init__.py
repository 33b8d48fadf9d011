"""Export of the zoo's image models to ONNX, post-processing included,
and an onnxruntime inferencer (see ``docs/deploy.md``).

Not imported by ``import mmdet_pep``: it needs ``onnx`` and
``onnxruntime`` only to write and run graphs (``requirements/deploy.txt``).
"""
from .export import (OPSET, build_deploy_model, check_exportable,
                     export_onnx, supported_heads)
from .model import OUTPUT_NAMES, DeployModel, NotExportableError

__all__ = [
    'OPSET', 'OUTPUT_NAMES', 'DeployModel', 'NotExportableError',
    'build_deploy_model', 'check_exportable', 'export_onnx',
    'supported_heads'
]
