"""Small training loops for spiking classifiers: plain snnTorch (float) and :class:`s2sim.qat.QATModel` alike.

Tensors are time-first, ``[T, B, *input_shape]``; a model's output spikes ``[T', B, n_classes]`` are summed over
time and the class with the most spikes wins (lowest index on a tie), as on the chip. The loss is cross-entropy
on ``logit_scale x`` the spike counts. torch and snnTorch are imported when called.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Callable, Iterable

import numpy as np


def reset_states(model: Any) -> None:
    """Zero the state of every snnTorch neuron in ``model`` (module by module: ``snntorch.utils.reset`` only
    reaches the instances in its class registry, which misses deep copies)."""
    import snntorch

    for mod in model.modules():
        if isinstance(mod, snntorch.SpikingNeuron):
            mod.reset_mem()


def snntorch_forward(model: Any, x: Any) -> Any:
    """Plain snnTorch, step by step from a reset state: output spikes [T, B, n] for input ``x`` [T, B, ...].

    The model's neurons hold their state (``init_hidden=True``); a layer that returns a tuple (``output=True``)
    passes its spikes on.
    """
    import torch

    reset_states(model)
    out = []
    for t in range(x.shape[0]):
        h = model(x[t])
        out.append(h[0] if isinstance(h, tuple) else h)
    return torch.stack(out)


def fit(forward: Callable[[Any], Any], params: Iterable[Any], batches: Callable[[np.ndarray, int], Any],
        labels: np.ndarray, epochs: int, lr: float, batch_size: int = 64, seed: int = 0,
        logit_scale: float = 0.5, cosine: bool = False, progress: bool | None = None) -> list[float]:
    """Adam on cross-entropy of output spike counts; returns the seconds of each epoch.

    Each epoch shows a progress bar over its batches on stderr (see :mod:`s2sim.progress`; ``progress`` forces it
    on or off) and logs its mean loss and duration (INFO, ``s2sim`` logger).

    Parameters
    ----------
    forward : callable
        Input [T, B, ...] -> output spikes [T', B, n_classes] (differentiable).
    params : iterable of tensors
        What Adam trains.
    batches : callable
        ``batches(indices, epoch)`` -> the input [T, B, ...] of those training samples in that epoch (a rate
        code may be redrawn per epoch).
    labels : array [N]
        Class of every training sample.
    cosine : bool
        Anneal the learning rate from ``lr`` to 0 over the epochs (cosine); otherwise it stays at ``lr``.
    """
    import torch
    import torch.nn.functional as F

    from .progress import bar, logger, step

    opt = torch.optim.Adam(params, lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs) if cosine else None
    gen = torch.Generator().manual_seed(seed)
    y = torch.as_tensor(np.asarray(labels), dtype=torch.int64)
    times = []
    for epoch in range(epochs):
        t0 = time.perf_counter()
        order = torch.randperm(len(y), generator=gen)
        losses = []
        for i in bar(range(0, len(order), batch_size), desc=f"epoch {epoch + 1}/{epochs}", unit="batch",
                     progress=progress):
            idx = order[i:i + batch_size]
            spk = forward(batches(idx.numpy(), epoch))
            loss = F.cross_entropy(spk.sum(0) * logit_scale, y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.detach())
        if schedule is not None:
            schedule.step()
        times.append(time.perf_counter() - t0)
        if losses and logger.isEnabledFor(logging.INFO):  # the mean costs a device sync: only when shown
            step("epoch %d/%d: mean loss %.4f, %.1f s", epoch + 1, epochs, float(torch.stack(losses).mean()),
                 times[-1])
    return times


def predict(output_spikes: Any) -> np.ndarray:
    """Class per sample from output spikes [T, B, n]: the most spikes, lowest index on a tie."""
    spikes = output_spikes.detach().cpu().numpy() if hasattr(output_spikes, "detach") else np.asarray(output_spikes)
    return spikes.sum(axis=0).argmax(axis=1)


def accuracy(pred: Any, labels: Any) -> float:
    """Percent of ``pred`` equal to ``labels``."""
    return float(100.0 * np.mean(np.asarray(pred) == np.asarray(labels)))
