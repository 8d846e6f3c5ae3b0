"""All questions of a sample in one row behind its video prefix: the columns' layout and who sees whom.

After the prefix is cached, a row holds one slot per question (the question's prompt suffix, right-aligned in a
slot as wide as the batch's longest for that question, so every row's j-th question ends at the same column),
then, per decoding step, one new token per question. Each column has an owner: the prefix, a question, padding,
or hidden (the prefix's left padding). A token sees the columns up to its own that belong to the prefix or to
its own question, so every question is answered as if it were alone behind the video, and the prefix is stored
once per sample. Padding sees the prefix and earlier padding (a row of SDPA must never see nothing).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

PREFIX, HIDDEN, PADDING = -1, -2, -3


@dataclass
class QuestionColumns:
    """The growing layout of a batch: owners of the cached columns and each question's next position."""

    owners: torch.Tensor  # (rows, columns) long: PREFIX, HIDDEN, PADDING or the question's slot
    next_positions: torch.Tensor  # (rows, slots): the text position of each question's next token
    slots: int
    asked: torch.Tensor | None = field(default=None)  # (rows, slots) bool: the slot holds a question (set by the chunk)

    @classmethod
    def after_prefix(cls, prefix_mask: torch.Tensor, following: torch.Tensor, slots: int) -> QuestionColumns:
        """The layout once the (left padded) prefix rows are cached; `following`: each row's first text
        position after its prefix."""
        owners = torch.where(prefix_mask.bool(), PREFIX, HIDDEN).long()
        return cls(owners, following.long()[:, None].expand(-1, slots).clone(), slots)

    def question_chunk(self, suffixes: Sequence[Sequence[Sequence[int]]], filler: int):
        """(token ids, text positions, slot ends) of the chunk holding every question's prompt suffix; appends
        the chunk's columns. `suffixes[r][j]`: row r's j-th question (absent: the slot is padding). Slot ends
        are the chunk columns of each question's last token, the same for every row."""
        rows = len(suffixes)
        self.asked = torch.tensor([[j < len(row) for j in range(self.slots)] for row in suffixes])
        widths = [max((len(s[j]) for s in suffixes if j < len(s)), default=1) for j in range(self.slots)]
        ends = torch.tensor(widths).cumsum(0) - 1
        ids = torch.full((rows, sum(widths)), filler, dtype=torch.long)
        owners = torch.full_like(ids, PADDING)
        positions = self.next_positions[:, :1].repeat(1, ids.shape[1])
        for r, row in enumerate(suffixes):
            for j, suffix in enumerate(row):
                start = int(ends[j]) + 1 - len(suffix)
                ids[r, start: start + len(suffix)] = torch.tensor(suffix)
                owners[r, start: start + len(suffix)] = j
                positions[r, start: start + len(suffix)] = self.next_positions[r, j] + torch.arange(len(suffix))
                self.next_positions[r, j] += len(suffix)
        self.owners = torch.cat([self.owners, owners.to(self.owners.device)], dim=1)
        return ids, positions, ends

    def step(self) -> torch.Tensor:
        """One decoding step: every slot gets a column (padding where the slot holds no question); returns
        their text positions."""
        owner = torch.where(self.asked, torch.arange(self.slots), PADDING).to(self.owners.device)
        self.owners = torch.cat([self.owners, owner], dim=1)
        positions = self.next_positions.clone()
        self.next_positions += 1
        return positions

    def mask(self, new: int) -> torch.Tensor:
        """(rows, 1, new, columns) bool: what each of the last `new` columns sees."""
        columns = self.owners.shape[1]
        own = self.owners[:, -new:, None]
        index = torch.arange(columns, device=self.owners.device)
        causal = index[None, :] <= index[columns - new:, None]
        return (causal[None] & ((self.owners[:, None, :] == PREFIX) | (self.owners[:, None, :] == own)))[:, None]

    def prompt_tokens(self, ids: torch.Tensor, filler: int) -> torch.Tensor:
        """(rows, slots, columns) the tokens of each question's own prompt, for the repetition penalty: `ids`
        (rows, columns) are the columns' tokens; those of the prefix and of the slot's question are kept,
        every other column holds `filler` (a token of every prompt, so the set of tokens is the prompt's)."""
        owners = self.owners[:, None, :].to(ids.device)
        mine = (owners == PREFIX) | (owners == torch.arange(self.slots, device=ids.device)[:, None])
        return torch.where(mine, ids[:, None, :], filler)
