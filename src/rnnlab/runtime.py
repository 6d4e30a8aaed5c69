"""Process tuning that rnnlab's entry points apply before any work: huge pages and the subnormal
flush. Nothing here runs on import; the entry points call it (through `rnnlab.tuning`, which
applies a config's `runtime` node).

Subnormal floats (below 1.2e-38) take a slow microcode path on Intel Xeons: a BiLSTM's gradient
from the final state alone shrinks at every step, turns subnormal after a few hundred steps, and
the backward pass then ran 4.6x slower there (docs/performance.md). Flushing them to zero
(FTZ/DAZ) costs nothing and changes results only in the last bits of values that small.
The flag lives in each thread's floating-point control register, so it is set on every thread
that computes: the calling thread, torch's OpenMP threads, the row-shard threads
(`rnnlab.models.recurrent`) and DataLoader workers (`rnnlab.data.datamodule`) copy it from here.
"""

from __future__ import annotations

import ctypes
import os
import platform

# torch reads this at its first CPU allocation; importing lightning already makes one
HUGE_PAGES_ENV = "THP_MEM_ALLOC_ENABLE"

# /proc/cpuinfo flag -> its name: the vector units that decide rnnlab's CPU speed; bf16 units make
# `trainer.precision=bf16-mixed` pay
ISA_UNITS = (
    ("avx2", "AVX2"),
    ("avx512f", "AVX-512"),
    ("avx512_bf16", "AVX512-BF16"),
    ("amx_tile", "AMX"),
    ("amx_bf16", "AMX-BF16"),
)

# the process's choice, which threads rnnlab starts copy; None: never set, threads keep their own
_flush: bool | None = None


def use_huge_pages() -> None:
    """Large CPU tensors on transparent huge pages, unless the environment already says.

    Call it before importing torch. A training step frees and reallocates the same megabyte-sized
    buffers (oneDNN's LSTM workspace, the embedding's dense gradient), and on 4 KiB pages every
    step faults them back in page by page: BiLSTM steps on 600-token reviews ran 1.5x faster on
    huge pages (scripts/bench_subnormal.py, docs/performance.md). THP_MEM_ALLOC_ENABLE=0 in the
    environment keeps small pages.
    """
    os.environ.setdefault(HUGE_PAGES_ENV, "1")


def flush_subnormals(on: bool = True) -> bool:
    """Flush subnormal floats to zero (on) or compute with them (off) on this thread and torch's
    OpenMP threads, and record the choice for the threads and workers rnnlab starts later.

    Returns False where the CPU cannot (no DAZ); nothing changes then.
    """
    import torch

    global _flush
    if not torch.set_flush_denormal(on):
        return False
    _flush = on
    _share_with_openmp_threads()
    return True


def subnormal_flush() -> bool | None:
    """The process's choice: True (flushed), False (kept), None (never set: left to each thread)."""
    return _flush


def apply_to_this_thread(flush: bool | None = None) -> None:
    """Give the calling thread (a row shard, a DataLoader worker) the process's flush setting,
    or `flush` where it is given (a worker process gets the choice of the process that made it)."""
    flush = _flush if flush is None else flush
    if flush is not None:
        import torch

        torch.set_flush_denormal(flush)


def flushes_subnormals() -> bool:
    """Whether this thread and torch's OpenMP threads turn 1e-39 * 1 into 0: measured, so it
    holds whatever set the flags (a tensor large enough that every thread takes a part)."""
    import torch

    tiny = torch.full((1 << 20,), 1e-39)
    return int((tiny * 1).count_nonzero()) == 0


def init_dataloader_worker(worker_id: int, flush: bool | None, rank: int = 0) -> None:
    """A DataLoader worker's `worker_init_fn`: the flush setting of the process that made the
    loader, then Lightning's worker seeding where `seed_everything(workers=True)` asked for it (a
    loader with its own worker_init_fn does not get Lightning's)."""
    apply_to_this_thread(flush)
    if int(os.environ.get("PL_SEED_WORKERS", 0)):
        from lightning.fabric.utilities.seed import pl_worker_init_function

        pl_worker_init_function(worker_id, rank)


def _share_with_openmp_threads() -> None:
    """Copy the calling thread's floating-point environment into each of torch's OpenMP threads.

    Threads started later copy it from the thread that starts them, but torch's OpenMP team may
    already exist (any parallel op before this call starts it). glibc's `fesetenv(const fenv_t*)`
    has the shape of an OpenMP outlined function (one pointer argument), so running it as a
    parallel region of the libgomp torch uses, with torch's thread count, sets every thread of
    the team torch runs on (a larger team would start threads that then sit idle in the pool).
    Elsewhere (no libgomp loaded, not glibc) this does nothing.
    """
    import torch

    gomp = _loaded_library("libgomp")
    if gomp is None:
        return
    try:
        libc = ctypes.CDLL(None)
        fegetenv, fesetenv = libc.fegetenv, libc.fesetenv
    except (OSError, AttributeError):
        return
    env = ctypes.create_string_buffer(256)  # fenv_t: 32 bytes on x86-64 glibc, 8 on aarch64
    if fegetenv(env) != 0:
        return
    gomp.GOMP_parallel.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint]
    gomp.GOMP_parallel.restype = None
    threads = torch.get_num_threads()
    gomp.GOMP_parallel(ctypes.cast(fesetenv, ctypes.c_void_p), ctypes.addressof(env), threads, 0)


def _loaded_library(name: str) -> ctypes.CDLL | None:
    """The already-loaded shared library whose file name starts with `name` (Linux), or None."""
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if f"/{name}" in line}
    except OSError:
        return None
    for path in sorted(paths):
        try:
            return ctypes.CDLL(path)  # dlopen of a loaded library returns that same instance
        except OSError:
            continue
    return None


def cpu_description() -> tuple[str, list[str]]:
    """This machine's CPU model and its vector units of ISA_UNITS (from /proc/cpuinfo on Linux;
    elsewhere the platform's processor name and no units)."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    model = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
                    break
    except OSError:
        pass
    return model, [name for flag, name in ISA_UNITS if flag in flags]


def machine_description(device_type: str = "cpu") -> str:
    """What a run computed on, for its record: the GPU's name on CUDA, else the CPU model and
    its vector units, e.g. "AMD EPYC (AVX2, AVX-512, AVX512-BF16)"."""
    import torch

    if device_type == "cuda" and torch.cuda.is_available():
        return torch.cuda.get_device_name()
    model, units = cpu_description()
    return f"{model} ({', '.join(units)})" if units else model


def has_bf16_units(units: list[str]) -> bool:
    """Whether these units compute bfloat16 natively (AVX512-BF16 or AMX)."""
    return "AVX512-BF16" in units or "AMX-BF16" in units
