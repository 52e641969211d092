"""The README's plot: inter-token gap distributions per N, mockllm beside the ceiling."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def plot(report: dict[str, Any], streams: tuple[int, ...], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(streams), figsize=(4 * len(streams), 3.4), sharey=True)
    delay = report["plan"]["delay"] * 1000
    for ax, n in zip(axes, streams, strict=True):
        for name, style in (("ceiling", {"color": "0.55", "linestyle": "--"}), ("mockllm", {"color": "C0"})):
            quantiles = report["cases"][name][f"paced_{n}"]["gap_ms_quantiles"]
            share = [(i + 1) / (len(quantiles) + 1) for i in range(len(quantiles))]
            ax.plot(quantiles, share, label=name, **style)
        ax.axvline(delay, color="C2", linewidth=0.8)
        ax.set_title(f"N = {n:,} streams")
        ax.set_xlabel("gap between tokens (ms)")
        ax.set_xlim(max(0.0, delay - 3), delay + 4)
    axes[0].set_ylabel("share of gaps ≤ x")
    axes[0].legend(loc="lower right")
    fig.suptitle(f"Inter-token gaps at {delay:g} ms/token ({report['date'][:10]})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
