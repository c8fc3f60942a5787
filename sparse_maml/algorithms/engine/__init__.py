"""The inner-loop engine every algorithm runs on (docs/DESIGN.md, "One equation for every algorithm").

``base``: the contract an algorithm fills in (``InnerLoopLearner``) and its dispatch; ``update``: the K-step update
``inner_loop``; ``per_task``: one task's inner loop and query pass; ``batched``: a meta-batch's tasks together;
``graphs``: CUDA-graph replay of the batched inner loop; ``first_order``: the first-order meta-gradients and their
surrogate loss; ``evaluation``: test results of adapted tasks; ``masks``: mask initialisations, straight-through
steps and update sparsity; ``protocol``: what the engine modules need of a learner.
"""
