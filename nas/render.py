"""Rich tables for people; the same data goes out as JSON under the storage contract's names."""

from __future__ import annotations

from rich.table import Table

from nas.results import Front, TrialRecord
from storage import read_device
from search_spaces import Block, Genotype

_OP_NAMES = {"ds": "DS", "dsa": "DS+act", "ir": "MBConv", "er": "FusedMB", "cn": "Conv"}


def fmt_count(n: int | None) -> str:
    if n is None:
        return "-"
    return f"{n / 1e6:.2f}M" if n >= 1e5 else f"{n / 1e3:.1f}k"


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def device_line(fingerprint: dict) -> str:
    """A device fingerprint in one line, without importing torch (``nas trials`` must start fast)."""
    fingerprint = read_device(fingerprint)
    return (f"{fingerprint['cpu']}, {fingerprint['backend']}, {fingerprint['threads']} thread(s), "
            f"{fingerprint['resolution']} px, batch {fingerprint['batch']}, allocator {fingerprint['allocator']}")


def _allows_skip(block: Block) -> bool:
    """timm's rule: conv blocks skip only when asked, DS+act never, the others unless 'noskip'."""
    if block.type == "cn":
        return block.skip is True
    return block.type != "dsa" and block.skip is not False


def block_rows(genotype: Genotype) -> list[dict]:
    """One row per block string, with what each option means."""
    rows = []
    for stage_index, (stage, strings) in enumerate(zip(genotype.stages, genotype.arch_def, strict=False)):
        for block, text in zip(stage, strings, strict=False):
            rows.append({
                "stage": stage_index, "block": text, "op": _OP_NAMES[block.type], "repeats": block.repeats,
                "kernel": block.kernel, "stride": block.stride, "expansion": block.expansion,
                "out_chs": block.out_chs, "se_ratio": block.se_ratio or 0.0, "act": block.act or genotype.act,
                "skip": _allows_skip(block),
            })
    return rows


def block_table(genotype: Genotype, title: str) -> Table:
    table = Table(title=title)
    for column in ("stage", "block string", "op", "r", "k", "s", "e", "c", "se", "act", "skip"):
        table.add_column(column, justify="left" if column in ("block string", "op", "act") else "right")
    for row in block_rows(genotype):
        table.add_row(str(row["stage"]), row["block"], row["op"], str(row["repeats"]), str(row["kernel"]),
                      str(row["stride"]), f"{row['expansion']:g}", str(row["out_chs"]), f"{row['se_ratio']:g}",
                      row["act"], "yes" if row["skip"] else "no")
    table.caption = (f"stem {genotype.stem_size} ch, head {genotype.num_features or 'none'}, "
                     f"{genotype.family} family, default act {genotype.act}")
    return table


def _origin(record: TrialRecord) -> str:
    if record.seed_arch:
        return record.seed_arch
    return f"{record.warm_start} skeleton" if record.warm_start else "searched"


def trials_table(records: list[TrialRecord], title: str) -> Table:
    table = Table(title=title)
    for column in ("#", "state", "reward", "acc %", "latency ms", "± ms", "from", "params", "MACs", "note"):
        table.add_column(column, justify="left" if column in ("state", "note", "from") else "right")
    for r in records:
        note = r.fail_reason or ("" if _origin(r) == "searched" else _origin(r))
        table.add_row(str(r.number), r.state, fmt(r.reward, ".4f"),
                      fmt(None if r.accuracy is None else 100 * r.accuracy, ".1f"), fmt(r.latency_ms, ".2f"),
                      fmt(r.latency_spread_ms, ".2f"), r.latency_source or "-", fmt_count(r.params), fmt_count(r.macs), note)
    return table


def ranking_table(ranked: list[tuple[float, TrialRecord]], title: str, target_ms: float) -> Table:
    table = Table(title=title)
    for column in ("rank", "trial", "reward", "acc %", "latency ms", "from", "meets target", "params", "MACs", "arch"):
        table.add_column(column, justify="left" if column in ("arch", "from") else "right")
    for position, (score, r) in enumerate(ranked, 1):
        table.add_row(str(position), str(r.number), f"{score:.4f}", f"{100 * r.accuracy:.1f}",
                      f"{r.latency_ms:.2f}", r.latency_source or "-", "yes" if r.latency_ms <= target_ms else "no",
                      fmt_count(r.params), fmt_count(r.macs), _origin(r))
    return table


def front_table(front: Front, title: str) -> Table:
    """A Pareto front, fastest first: the latency target is a constraint column, not a score, and
    the most accurate member within it is marked."""
    table = Table(title=title)
    choice = front.choice
    for column in ("trial", "acc %", "latency ms", "from", f"<= {front.target_ms:g} ms", "params", "MACs", "arch", "choice"):
        table.add_column(column, justify="left" if column in ("arch", "from", "choice") else "right")
    for r in front.members:
        table.add_row(str(r.number), f"{100 * r.accuracy:.1f}", f"{r.latency_ms:.2f}", r.latency_source or "-",
                      "yes" if r.latency_ms <= front.target_ms else "no", fmt_count(r.params), fmt_count(r.macs),
                      _origin(r), "most accurate within T" if r is choice else "")
    table.caption = (f"the accuracy-latency front: {len(front.members)} non-dominated of {front.completed} completed "
                     f"trials" + ("" if choice else f"; none within {front.target_ms:g} ms"))
    return table


def estimator_table(rows: list[dict], title: str) -> Table:
    """Estimators against a reference (``nas estimators rank`` and ``bench/estimators.py``)."""
    table = Table(title=title)
    for column in ("estimator", "Kendall tau", "Spearman", "SNR", "s / network", "tau / s"):
        table.add_column(column, justify="left" if column == "estimator" else "right")
    for r in rows:
        table.add_row(r["estimator"], f"{r['kendall_tau']:.3f}", f"{r['spearman']:.3f}",
                      "-" if r["snr"] is None else f"{r['snr']:.1f}", f"{r['seconds_per_arch']:.3f}",
                      f"{r['tau_per_second']:.3g}")
    return table
