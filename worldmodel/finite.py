"""Non-finite numbers are stopped where they enter, not discovered as black videos later.

One NaN weight or a NaN loss poisons everything downstream without an error: every generated frame comes
out as zeros and the command still exits 0. So checkpoints are checked when they load, training stops at
the first non-finite loss (before the step that would spread it into the weights), and a session refuses
to hand out a frame computed from non-finite numbers.
"""

from __future__ import annotations

import torch


class NonFiniteError(ValueError):
    """A weight, a loss or a frame holds NaN or an infinity; the message says which and where."""


def non_finite_names(state: dict[str, torch.Tensor]) -> list[str]:
    """Names of the floating-point tensors in `state` that hold a NaN or an infinity."""
    return [name for name, t in state.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]


def check_weights(state: dict[str, torch.Tensor], where: str) -> None:
    bad = non_finite_names(state)
    if bad:
        shown = ", ".join(bad[:4]) + (f" and {len(bad) - 4} more" if len(bad) > 4 else "")
        raise NonFiniteError(f"{where}: weight(s) {shown} hold NaN or infinite values (a diverged training run?)")


def any_rank(flag: bool, dd) -> bool:  # worldmodel.train.Dist
    """True on every rank when `flag` is true on any (so all ranks stop together, none waits on the others)."""
    if not dd.on:
        return flag
    import torch.distributed as dist

    t = torch.tensor([float(flag)], device=dd.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def stop_on_non_finite_loss(loss: torch.Tensor, stage: str, step: int, ckpt_dir, dd) -> None:
    """Raise before the optimizer step when the loss is NaN or infinite on any rank. The weights of that step
    are never written, so the last checkpoint (and pipeline/) stay the last good ones."""
    if any_rank(not bool(torch.isfinite(loss.detach()).all()), dd):
        raise NonFiniteError(
            f"{stage} training stopped at step {step + 1}: the loss is {float(loss.detach())} (training diverged); "
            f"the last good checkpoint is kept in {ckpt_dir} (if one was saved). Lower the learning rate or "
            "raise grad_clip's strictness, then --resume or start over with --force"
        )
