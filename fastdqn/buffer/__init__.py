"""A preallocated tensor replay buffer on the training device, for K >= 1 members (a single run is K = 1).

Three small parts, composed by `ReplayBuffer` (the split TorchRL uses, without its machinery):
- `TensorStorage` holds one fixed-size tensor per field, allocated once, member k's rows in its own block.
- `RingWriter` owns a cursor and fill count per member: B rows land at `(cursor + arange(B)) % capacity`.
- a `Sampler` per member draws indices on the device from a seeded `torch.Generator`
  (`UniformSampler`, or `fastdqn.per.PrioritizedSampler`: a sum tree per member).

Writes and reads are index arithmetic on whole batches: no Python loop over transitions, no host
round trip. n-step windows (`fastdqn.nstep`) and frame storage (`fastdqn.frames`) plug in beside them.
"""

from fastdqn.buffer.replay import FIELDS, Batch, MemberBatch, ReplayBuffer
from fastdqn.buffer.samplers import Sampler, UniformSampler, make_sampler
from fastdqn.buffer.storage import Storage, TensorStorage
from fastdqn.buffer.writer import RingWriter

__all__ = [
    "FIELDS",
    "Batch",
    "MemberBatch",
    "ReplayBuffer",
    "RingWriter",
    "Sampler",
    "Storage",
    "TensorStorage",
    "UniformSampler",
    "make_sampler",
]
