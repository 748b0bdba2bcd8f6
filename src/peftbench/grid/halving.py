"""The halving learning-rate search: successive halving with Optuna's SuccessiveHalvingPruner, in the grid
process, over the same search runs as the exhaustive search cut short.

Design. One in-memory Optuna study per method, one trial per candidate rate (ask/tell). The rungs are
synchronous: every surviving rate's run trains to the rung's step (its own process, as every run), stops
there with a checkpoint (status 'paused') and is scored on the validation split; the next rung resumes it
from that checkpoint. The learning-rate schedule is always the full search run's (`lr_search.epochs`) and
the resume is exact (docs/errors.md), so a rate that reaches the last rung is exactly its exhaustive run,
and nothing is trained twice. Rung k stops after m * eta^k steps, m = max(R // eta^(rungs-1), W + 1) (R:
the run's steps, W: its warm-up steps as the Trainer resolves them, eta: reduction_factor): no rung falls
inside the warm-up, where every rate's learning rate is scaled towards 0 alike and the scores tie. These
are exactly the pruner's own rung steps (min_resource = m): it judges a value reported at step s at every
rung k with m * eta^k <= s, so an earlier pause would never be judged and a later one judged twice. A rung
at or past the run's end is the end: a run too short for every rung after its warm-up has fewer
(lr_search.rung_steps, reported in lr_search.json and the search's summary lines).

Why the order of should_prune(): Optuna's pruner is asynchronous (ASHA). It compares a trial with the
trials that asked before it at the same rung, and promotes the first to ask against no competition. In a
synchronous rung every value is known before any trial asks, so the trials ask in the order in which that
rule gives the synchronous answer, the best len(rung) // eta (at least one): those from the worst of them
to the best (each is then the best so far), then the others (each then has all kept ones ahead of it). The
pruner still makes every decision; tests/test_lr_search.py checks that it keeps exactly the rung's best.

A grid-process scheduler (rather than Ray Tune or one long-lived process per trial) keeps the one-process-
per-run design, the run folders, the cache (a rerun skips complete runs and resumes paused ones) and the
--inline and Ray executors, which only run the specs of each rung."""

import math
from collections.abc import Callable
from pathlib import Path

from peftbench.config.config import ExperimentConfig
from peftbench.config.search_config import LrSearchConfig
from peftbench.grid.grid import SEARCH_FOLDER, RunSpec, expand_methods
from peftbench.grid.lr_search import SEARCH_FILE, candidate, rung_pause, search_spec
from peftbench.results import checkpoints, results
from peftbench.results.run_folder import read_run

RunSpecs = Callable[[list[RunSpec], str], object]  # runs specs (the grid loop), failures read from folders


def arrival_order(values: dict[float, float], reduction_factor: int, lower_is_better: bool) -> list[float]:
    """The order in which a synchronous rung's trials ask the asynchronous pruner (see the module's doc)."""
    keep = max(1, len(values) // reduction_factor)

    def rank(rate: float) -> tuple[bool, float]:
        value = values[rate]
        return math.isnan(value), value if lower_is_better else -value

    ranked = sorted(values, key=rank)
    return ranked[:keep][::-1] + ranked[keep:]


def rung_step(max_steps: int, warmup_steps: int, pause: tuple[int, int] | None) -> int:
    """The step a rung stops at: as checkpoints.PauseAt computes it in the run; the run's end for the last
    rung and for one that would reach it."""
    return min(checkpoints.pause_step(max_steps, warmup_steps, *pause), max_steps) if pause else max_steps


def pruner_for(search: LrSearchConfig, max_steps: int, warmup_steps: int):
    """Optuna's SuccessiveHalvingPruner whose rung steps are where the runs pause (see the module's doc)."""
    import optuna

    first = checkpoints.pause_step(max_steps, warmup_steps, *rung_pause(search, 0))
    return optuna.pruners.SuccessiveHalvingPruner(
        min_resource=first, reduction_factor=search.reduction_factor
    )


def _at_rung(folder: Path, spec: RunSpec, metric: str) -> tuple[int, float] | None:
    """(step, validation metric) of a search run of this config that reached the spec's rung; None when it
    did not (yet), failed, or is another config's. A rerun finds the rungs an earlier search reached."""
    run = read_run(folder, check_process=False)
    if run.status not in ("paused", "complete") or run.config_hash != spec.config_hash:
        return None
    record = results.read_json(folder / SEARCH_FILE) or {}
    if "max_steps" not in record:
        return None
    step = rung_step(record["max_steps"], record.get("warmup_steps") or 0, spec.pause_at)
    found = [r for r in record.get("rungs", []) if r["step"] == step]
    if not found:
        return None
    value = found[0].get(metric)
    return step, float("nan") if value is None else float(value)


class _MethodSearch:
    """One method's study: its rates still in the race and the trial of each."""

    def __init__(self, config: ExperimentConfig, entry) -> None:
        import optuna  # here: its import costs a second that a grid without halving should not pay

        search = config.lr_search
        self.optuna, self.search, self.entry = optuna, search, entry
        self.alive = list(search.learning_rates)
        self.trials: dict[float, object] = {}
        self.pruned: dict[float, dict] = {}
        self.study, self.max_steps, self.warmup_steps, self.finished = None, 0, 0, False

    def folder(self, directory: Path, rate: float) -> Path:
        return directory / SEARCH_FOLDER / candidate(self.entry, rate, self.search.epochs).run_name

    def _start(self, record: dict) -> None:
        """The study, once the first rung's runs recorded their steps and warm-up."""
        optuna, search = self.optuna, self.search
        self.max_steps, self.warmup_steps = record["max_steps"], record.get("warmup_steps") or 0
        pruner = pruner_for(search, self.max_steps, self.warmup_steps)
        direction = "minimize" if search.lower_is_better else "maximize"
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.study = optuna.create_study(direction=direction, pruner=pruner)
        for rate in self.alive:
            self.trials[rate] = self.study.ask()
            self.trials[rate].set_user_attr("learning_rate", rate)

    def specs(self, config: ExperimentConfig, pause: tuple[int, int] | None) -> list[RunSpec]:
        return [search_spec(config, self.entry, rate, pause) for rate in self.alive]

    def rung(self, directory: Path, specs: list[RunSpec]) -> None:
        """Report the rung's values; on the last rung finish the trials, else prune the losing ones."""
        TrialState = self.optuna.trial.TrialState
        reached = {
            rate: _at_rung(self.folder(directory, rate), spec, self.search.metric)
            for rate, spec in zip(self.alive, specs, strict=True)
        }
        if self.study is None:
            started = [rate for rate in self.alive if reached[rate]]
            if not started:
                self.alive = []
                return
            self._start(results.read_json(self.folder(directory, started[0]) / SEARCH_FILE))
        for rate in [r for r in self.alive if reached[r] is None]:  # failed: no value to compare
            self.study.tell(self.trials[rate], state=TrialState.FAIL)
            self.alive.remove(rate)
        for rate in self.alive:
            step, value = reached[rate]
            self.trials[rate].report(value, step)
        if rung_step(self.max_steps, self.warmup_steps, specs[0].pause_at) == self.max_steps:
            self.finished = True
            for rate in self.alive:
                value = reached[rate][1]
                if math.isfinite(value):
                    self.study.tell(self.trials[rate], value)
                else:
                    self.study.tell(self.trials[rate], state=TrialState.FAIL)
            return
        values = {rate: reached[rate][1] for rate in self.alive}
        for rate in arrival_order(values, self.search.reduction_factor, self.search.lower_is_better):
            if self.trials[rate].should_prune():
                step, value = reached[rate]
                self.pruned[rate] = {"pruned_at_step": step, "last_value": value}
                self.study.tell(self.trials[rate], state=TrialState.PRUNED)
                self.alive.remove(rate)
                checkpoints.drop_checkpoints(self.folder(directory, rate) / "trainer")


def run_halving(config: ExperimentConfig, directory: Path, run_specs: RunSpecs) -> dict[str, dict]:
    """Every method's halving search, rung by rung; returns the pruned rates of each method (its name ->
    rate -> the step it stopped at and its value there). Failures are read back from the run folders."""
    search = config.lr_search
    methods = [_MethodSearch(config, entry) for entry in expand_methods(config.methods)]
    for k in range(search.rungs):
        pause = rung_pause(search, k)
        rung = [
            (method, method.specs(config, pause))
            for method in methods
            if method.alive and not method.finished
        ]
        todo = [
            spec
            for method, specs in rung
            for rate, spec in zip(method.alive, specs, strict=True)
            if _at_rung(method.folder(directory, rate), spec, search.metric) is None
        ]
        run_specs(todo, f"lr search (halving, rung {k + 1}/{search.rungs})")
        for method, specs in rung:
            method.rung(directory, specs)
    return {method.entry.run_name: method.pruned for method in methods}
