"""A GraphNAS-style controller (Gao et al., IJCAI 2020): an LSTM emits one decision after another; trained with
REINFORCE against an exponential moving-average baseline, with an entropy bonus.

Each decision has its own output head over its options; the embedding of the chosen option is the next step's
input. The prior's weights start the heads' biases at ``log(weight)``, so the first samples follow the prior.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from openautoglm.core.graph.candidates import Space
from openautoglm.core.graph.search.base import SEARCHERS, Searcher


class Controller(nn.Module):
    """The LSTM policy over a space's decisions."""

    def __init__(self, space: Space, hidden: int = 64) -> None:
        super().__init__()
        self.decisions = space.decisions
        self.hidden = hidden
        self.start = nn.Parameter(torch.zeros(1, hidden))
        self.cell = nn.LSTMCell(hidden, hidden)
        self.heads = nn.ModuleList(nn.Linear(hidden, len(d.options)) for d in self.decisions)
        self.embeddings = nn.ModuleList(nn.Embedding(len(d.options), hidden) for d in self.decisions)
        with torch.no_grad():
            for head, decision in zip(self.heads, self.decisions, strict=True):
                linear: nn.Linear = head  # type: ignore[assignment]
                linear.weight.mul_(0.1)
                linear.bias.copy_(torch.tensor([math.log(w) for w in space.weights(decision)]))

    def sample(
        self, generator: torch.Generator | None = None, forced: Sequence[int] | None = None
    ) -> tuple[list[int], torch.Tensor, torch.Tensor]:
        """Option indices (sampled, or ``forced``), the sum of their log-probabilities, and the entropy."""
        h = c = torch.zeros(1, self.hidden)
        x = self.start
        indices: list[int] = []
        log_probs, entropies = [], []
        for step, (head, embedding) in enumerate(zip(self.heads, self.embeddings, strict=True)):
            h, c = self.cell(x, (h, c))
            logits = head(h)
            probs = torch.softmax(logits, dim=-1)
            if forced is not None:
                choice = int(forced[step])
            else:
                choice = int(torch.multinomial(probs, 1, generator=generator).item())
            log_p = torch.log_softmax(logits, dim=-1)
            log_probs.append(log_p[0, choice])
            entropies.append(-(probs * log_p).sum())
            indices.append(choice)
            x = embedding(torch.tensor([choice]))
        return indices, torch.stack(log_probs).sum(), torch.stack(entropies).sum()


@SEARCHERS.register("rl", "reinforce", "graphnas")
class ReinforceSearch(Searcher):
    """Args: lr (Adam; 0.01, as budgets here are about 100 samples where GraphNAS used 3.5e-4 over thousands),
    baseline_decay, entropy_weight, hidden (LSTM size)."""

    def __init__(
        self,
        space: Space,
        seed: int = 0,
        warm_start: Sequence[Any] = (),
        lr: float = 0.01,
        baseline_decay: float = 0.95,
        entropy_weight: float = 1e-4,
        hidden: int = 64,
        **_: Any,
    ) -> None:
        super().__init__(space, seed, warm_start)
        torch.manual_seed(seed)
        self.generator = torch.Generator().manual_seed(seed)
        self.controller = Controller(space, hidden)
        self.optimiser = torch.optim.Adam(self.controller.parameters(), lr=lr)
        self.baseline: float | None = None
        self.spread = 0.0
        self.decay = baseline_decay
        self.entropy_weight = entropy_weight
        self.pending: dict[Any, int] = {}
        self.buffer: list[tuple[list[int], float]] = []
        self.known: dict[Any, float] = {}

    def propose(self, n: int) -> list[Any]:
        out: list[Any] = []
        while len(out) < n:
            with torch.no_grad():
                indices, _, _ = self.controller.sample(self.generator)
            arch = self.space.decode(indices)
            if not arch.valid:
                self.buffer.append((indices, 0.0))  # teach it to avoid all-skip networks
                continue
            if arch in self.known:
                # A converging policy re-samples what it knows: learn from the known reward and explore its
                # neighbourhood instead (one decision changed), rather than spend a round on it.
                self.buffer.append((indices, self.known[arch]))
                for _ in range(20):
                    arch = self.space.mutate(arch, self.rng)
                    if arch not in self.known and arch not in self.pending:
                        break
            self.pending[arch] = self.pending.get(arch, 0) + 1
            out.append(arch)
        self._flush()
        return out

    def tell(self, arch: Any, reward: float) -> None:
        # Rewards of a round arrive together: one policy-gradient step per round, averaged over its samples, with
        # log-probabilities recomputed under the current policy (teacher-forced on the sampled decisions).
        # Warm-start architectures are learnt from the same way.
        if self.pending.get(arch):
            self.pending[arch] -= 1
        self.known[arch] = reward
        self.buffer.append((self.space.encode(arch), reward))
        if not any(self.pending.values()):
            self._flush()

    def _flush(self) -> None:
        if not self.buffer:
            return
        losses = []
        for indices, reward in self.buffer:
            _, log_prob, entropy = self.controller.sample(forced=indices)
            baseline = reward if self.baseline is None else self.baseline
            # Rewards (accuracies) differ by a few points; scaling by their running spread keeps steps useful.
            advantage = (reward - baseline) / (math.sqrt(self.spread) + 1e-3)
            losses.append(-(advantage * log_prob) - self.entropy_weight * entropy)
        self.optimiser.zero_grad()
        torch.stack(losses).mean().backward()
        self.optimiser.step()
        for _, reward in self.buffer:
            if self.baseline is None:
                self.baseline = reward
            else:
                self.spread = self.decay * self.spread + (1 - self.decay) * (reward - self.baseline) ** 2
                self.baseline = self.decay * self.baseline + (1 - self.decay) * reward
        self.buffer.clear()
