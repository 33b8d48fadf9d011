# Stage 2 of the 8-class model: the car model's fine-tune (20 epochs of
# random 1024 x 1024 crops of full images, every training image including
# those without instances, batch 16 on 1 GPU) from the 8-class stage 1.
_base_ = './spatialemb_erfnet_crop1024-ft20e_cityscapes-car.py'

load_from = 'work_dirs/spatialemb_erfnet_crop512-200e_cityscapes/epoch_200.pth'
classes = ('person', 'rider', 'car', 'truck', 'bus', 'train', 'motorcycle',
           'bicycle')
metainfo = dict(classes=classes)
train_dataloader = dict(dataset=dict(metainfo=metainfo))
val_dataloader = dict(dataset=dict(metainfo=metainfo))
test_dataloader = val_dataloader
model = dict(mask_head=dict(num_classes=len(classes)))
