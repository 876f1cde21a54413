"""Which memory layout a network may train in: channels_last unless the CPU's oneDNN backward would crash on it.

The bug (issue 21 item 4). torch 2.13.0+cpu (oneDNN v3.12.0) crashes, hangs or corrupts the heap in the
backward (weight gradient) of a *strided* 1x1 convolution in channels_last whose input has 2 to 7
channels, when oneDNN runs its AVX2 kernel (`jit_1x1:avx2` backward_weights, i.e.
jit_avx2_1x1_convolution_bwd_weights). The minimal case is `nn.Conv2d(6, 1, 1, stride=2)` on a ReLU'd
channels_last input: exit 139 (SIGSEGV) with one thread, a spin in that kernel with two (as reported in the
issue, on an AVX2 CPU). DARTS'
`FactorizedReduce` (two 1x1 convolutions at stride 2) makes such convolutions in small supernets (C=2,
layers=3: Conv2d(4, 2, 1, stride=2)), so such a search hung at its second step.

Evidence (2-core AMD EPYC with AVX-512, KVM; AVX2 forced with ONEDNN_MAX_CPU_ISA=AVX2, which emulates the
affected AVX2-only CPUs; one subprocess per shape, batch 4, 8x8 input, ReLU'd, bias, loss = sum):

* Natively (oneDNN picks `jit_1x1:avx512_core`) every shape below passes, with weight gradients equal to a
  float64 NCHW reference (in/out channels 1, 2, 3, 4, 6, 8, 12, 16 at stride 2, one thread), and so do the
  minimal case and the DARTS C=2 search: this machine itself is not affected.
* With AVX2, one thread, stride 2: every in_channels from 2 to 7 crashes for most out_channels (SIGSEGV,
  SIGABRT "double free or corruption", "munmap_chunk(): invalid pointer", SIGBUS); which out_channels crash
  varies from run to run (heap corruption): one pass of Conv2d(6, 1) crashed in 2 of 4 runs, 20 passes in 5 of 5.
  in_channels 1 (a different forward kernel) and in_channels 8, 9, 10, 12 and 16 passed for every
  out_channels tried (1 to 16), in every grid (one and two threads, 8x8 and 32x32 inputs, gradients checked).
* With AVX2, stride 1: no crash for any in/out channels in 1..16 (torch runs a channels_last 1x1 convolution
  at stride 1 as a matrix product, without oneDNN).
* With AVX2 and two threads the same shapes mostly pass but return wrong weight gradients now and then
  (Conv2d(2, 12) and Conv2d(2, 16) in one grid; the minimal case repeated 20 times: wrong in 2 of 5 runs).
* The DARTS supernet at C=2, layers=3 (the search of tests/trainables/test_host_syncs.py::
  test_search_step_does_not_sync_in_other_spaces[darts], batch 4) in channels_last with AVX2: with one thread
  its first step aborts ("free(): invalid next size"); with two it does its first step in 0.45 s and hangs in
  its second, one OpenMP thread at 100% CPU inside jit_avx2_1x1_convolution_bwd_weights_t::
  execute_backward_weights and the main thread in gomp_team_barrier_wait_end (gdb); no step in 200 s in a
  second run. In NCHW with AVX2 it runs (0.27 s a step with one thread; 3 to 7 s with two on the loaded
  machine of that second run), and the test passes.

8 is also the AVX2 kernel's vector width in float32 (a likely cause, not read from oneDNN's source; AVX-512's
kernel, 16 wide, passes at 2, 3, 4, 6, 8 and 12 channels). The rule here: a `Conv2d` with a 1x1 kernel, a stride
above 1 and fewer than `MIN_SAFE_CHANNELS` = 8 input channels per group (1 included, to be safe) is unsafe for
channels_last on the CPU, whatever the CPU (the rule does not depend on the machine). Out channels do not matter
(Conv2d(8, 1), Conv2d(16, 1) pass) and normal-size networks (NB201 or DARTS at C=16) have none, so they keep
channels_last. tests/trainables/test_memory_format.py re-runs the minimal case in a subprocess and reports whether
the installed torch is affected.

`resolve_channels_last` applies the rule: the search config's "auto" keeps NCHW on such a network; an explicit
`channels_last: true` keeps channels_last but warns (`ChannelsLastWarning`) naming the reason and the layers.
`probe_minimal_case` runs the minimal case in a subprocess (cached per process) for diagnosis
(`python -m trainables.runs.memory_format`); the loops do not call it, since it costs a torch import per
process and an affected machine still runs normal-size networks in channels_last.
"""

from __future__ import annotations

import functools
import logging
import os
import subprocess
import sys
import warnings

from torch import nn

__all__ = ["MIN_SAFE_CHANNELS", "ChannelsLastWarning", "MINIMAL_CASE", "unsafe_channels_last_convs",
           "resolve_channels_last", "probe_minimal_case"]

log = logging.getLogger(__name__)

#: a strided 1x1 convolution needs at least this many input channels (per group) for channels_last on the CPU
MIN_SAFE_CHANNELS = 8


class ChannelsLastWarning(RuntimeWarning):
    """channels_last was asked for on a network that torch's CPU backward may crash or hang on."""


def _is_unsafe(conv: nn.Conv2d) -> bool:
    return (tuple(conv.kernel_size) == (1, 1) and max(conv.stride) > 1
            and conv.in_channels // conv.groups < MIN_SAFE_CHANNELS)


def unsafe_channels_last_convs(model: nn.Module) -> list[str]:
    """The model's convolutions that oneDNN's CPU backward may crash or hang on in channels_last, each as
    "<module name>: Conv2d(<in>, <out>, kernel_size=..., stride=...)" (empty: channels_last is safe)."""
    return [f"{name}: {conv}" for name, conv in model.named_modules()
            if isinstance(conv, nn.Conv2d) and _is_unsafe(conv)]


def _listing(bad: list[str], most: int = 3) -> str:
    more = f" and {len(bad) - most} more" if len(bad) > most else ""
    return "; ".join(bad[:most]) + more


def resolve_channels_last(setting: bool | str, model: nn.Module, device_type: str, preferred: bool = False) -> bool:
    """Whether `model` runs in channels_last. `setting` is the config's value: True, False or "auto" (then
    `preferred`, the device's preferred layout, unless the model has convolutions the CPU backward may crash
    on: NCHW then). An explicit True on such a model stays True, with a `ChannelsLastWarning`."""
    bad = unsafe_channels_last_convs(model) if device_type == "cpu" else []
    reason = (f"torch's CPU (oneDNN AVX2) backward of a strided 1x1 convolution with fewer than {MIN_SAFE_CHANNELS} "
              f"input channels crashes or hangs in channels_last (issue 21; trainables/runs/memory_format.py)")
    if setting == "auto":
        if preferred and bad:
            log.info("channels_last 'auto': NCHW, since %s: %s", reason, _listing(bad))
            return False
        return preferred
    if setting and bad:
        warnings.warn(f"channels_last=True on {len(bad)} layer(s) where {reason}: {_listing(bad)}",
                      ChannelsLastWarning, stacklevel=2)
    return bool(setting)


#: the smallest known failing case: a one-channel-output strided 1x1 convolution's backward in channels_last,
#: 20 times (one pass trips the heap corruption in about half the runs, 20 in all of them), each weight gradient
#: checked against float64 NCHW (with two threads the AVX2 kernel also returns wrong gradients without crashing)
MINIMAL_CASE = """
import sys, torch
from torch import nn
torch.set_num_threads(int(sys.argv[1]))
torch.manual_seed(0)
conv = nn.Conv2d(6, 1, 1, stride=2).to(memory_format=torch.channels_last)
ref = nn.Conv2d(6, 1, 1, stride=2).double()
ref.load_state_dict(conv.state_dict())
for _ in range(20):
    x = torch.randn(4, 6, 8, 8)
    conv.weight.grad = ref.weight.grad = None
    conv(torch.relu(x.contiguous(memory_format=torch.channels_last))).sum().backward()
    ref(torch.relu(x.double())).sum().backward()
    assert torch.allclose(conv.weight.grad.double(), ref.weight.grad, atol=1e-4), "wrong weight gradient"
print("ok", flush=True)
"""


@functools.cache
def probe_minimal_case(threads: int = 1, timeout_s: float = 60.0, isa: str | None = None) -> str:
    """Runs `MINIMAL_CASE` in a fresh interpreter with `threads` torch threads: "ok", "wrong weight gradient",
    "crashed (exit N): <last stderr line>" (a negative N is the signal: -11 SIGSEGV, -6 SIGABRT) or "hung (no
    exit in T s)". `isa` caps oneDNN's instruction set (ONEDNN_MAX_CPU_ISA, e.g. "AVX2" to emulate an AVX2-only
    CPU on an AVX-512 one). Cached per process."""
    env = {**os.environ, "ONEDNN_MAX_CPU_ISA": isa} if isa else None
    try:
        proc = subprocess.run([sys.executable, "-c", MINIMAL_CASE, str(threads)], capture_output=True, text=True,
                              timeout=timeout_s, env=env)
    except subprocess.TimeoutExpired:
        return f"hung (no exit in {timeout_s:g} s)"
    if proc.returncode == 0 and proc.stdout.strip() == "ok":
        return "ok"
    tail = (proc.stderr.strip().splitlines() or [""])[-1][:200]
    if proc.returncode == 1 and tail.endswith("AssertionError: wrong weight gradient"):
        return "wrong weight gradient"
    return f"crashed (exit {proc.returncode}){': ' + tail if tail else ''}"


if __name__ == "__main__":
    for cap in (None, "AVX2"):
        for n in (1, 2):
            print(f"minimal case, oneDNN ISA {cap or 'native'}, {n} thread(s): {probe_minimal_case(n, isa=cap)}",
                  flush=True)
