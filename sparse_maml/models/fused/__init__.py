"""Conv4's fast forward for the inner loop: a functional Conv4 on a flat parameter dict (``functional``), each block
as one operation (``block``) over a single-pass batch norm/ReLU/pool (``kernels``). The backbones themselves are
one level up; nothing here is needed to define a model, only to run Conv4 faster."""
