# Training of the shipped multi-scale SRCNN (checkpoints/srcnn_multiscale.pth).
# python tools/train.py configs/srcnn_train.py --work-dir work_dirs/srcnn_train
model = dict(type='SRCNN', channels=(3, 64, 32, 3), kernel_sizes=(9, 1, 5), residual=True)

data = dict(
    split='train',
    source_rescales=(1.0, ),
    # 1.5 to 4 in steps of 0.25: integer and non-integer factors with exact patch alignment.
    scales=[1.5 + 0.25 * i for i in range(11)],
    scale_weights=None,
    patch_size=96,
    min_std=0.0,
)

train = dict(
    seed=0,
    iterations=3000,
    batch_size=16,
    lr=1e-3,
    warmup=200,
    min_lr_ratio=0.01,
    loss='mse',
    l1_iterations=0,
    loss_margin=12,
    grad_clip=None,
    init='identity',
    num_threads=2,
    log_interval=100,
)

checkpoint_name = 'srcnn_multiscale.pth'
