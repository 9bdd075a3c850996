"""Running a classifier on a device: batch sizes under the memory limits, worker threads, the
forward plan of many images. Below ``explain`` (the gradient engine's batches) and ``metrics``
(fidelity's forward batches), above ``model`` (out-of-memory halving and inference mode are the
``Classifier``'s own: ``Classifier.logits``).
"""

from .batching import auto_batch_size, forward_batch_size
from .forward import ForwardPlan, forward_plan, run_forward
from .parallel import cpu_workers, gradient_workers, intra_op_threads, ordered_map, split_rows

__all__ = ["ForwardPlan", "auto_batch_size", "cpu_workers", "forward_batch_size", "forward_plan",
           "gradient_workers", "intra_op_threads", "ordered_map", "run_forward", "split_rows"]
