"""Every mutant the suite must catch: which faulty adapter (or model), which upstream bug it reproduces, and which
check (dtype, verdict) names it. Read by ``tools/mutation_score.py`` (the mutation score table) and by
``tests/test_mutation_score.py`` (CI).

A :class:`Mutant` of kind ``run`` is a backend registered by ``adapters`` (``conformance run --adapters``); its
``-k`` selection is the exact parametrization of the named check (``check_fn[SPEC-DTYPE-PARAMS]``), so one run can
hold every mutant and the reference backends without running anything twice. A mutant of kind ``audit`` is a model
factory audited by ``conformance audit`` against a built-in init spec; its reference is the genuine factory.

``upstream`` is ``"design"`` for the synthetic defects at the sizes the statistics are designed for
(1% std error, 0.01 std shift, ...), which reproduce no single upstream report.
"""

from __future__ import annotations

from dataclasses import dataclass, field

INIT = "tests.faulty.init_adapters"
DIST = "tests.faulty.distribution_adapters"
ACT = "tests.faulty.activation_adapters"
ACT2 = "tests.faulty.activation_bugs"
SEED = "tests.faulty.seed_adapters"
RNG = "tests.faulty.rng_bugs"
TRAIN = "tests.faulty.training"
MODELS = "tests.faulty.models"
FLAX = "tests.faulty.flax_adapters"
KERAS = "tests.faulty.keras_adapters"
TINYGRAD = "tests.faulty.tinygrad_adapters"


@dataclass(frozen=True)
class Mutant:
    backend: str                 # "faulty-std:cpu"; for an audit, the factory "tests.faulty.models:name"
    adapters: str                # module registering the backend (audits: the module holding the factory)
    upstream: str                # "candle #578", or "design" for a synthetic defect
    bug: str                     # one line: what the mutant does
    check: str                   # check id ("init_schemes/test_random_scheme[normal-0_1]"), or "audit[SPEC]"
    dtype: str | None            # dtype of the record that must fail (None: the check has no dtype)
    test: str | None             # verdict that must fail; None: the check must fail by raising (no verdict)
    reference: str = "numpy:cpu"  # correct backend that must pass the same selection (audit: genuine factory)
    strict: bool = False         # the check is in the strict tier (run with --strict-tier)
    kind: str = "run"            # "run" (conformance run) or "audit" (conformance audit)
    audit_args: tuple[str, ...] = field(default=())  # extra ``conformance audit`` arguments (kind "audit")

    @property
    def name(self) -> str:
        return self.backend.split(":")[0] if self.kind == "run" else self.backend.split(":")[-1]

    @property
    def key(self) -> str:
        """Unique row key: mutant name plus check and dtype."""
        return f"{self.name} | {self.check} | {self.dtype or '-'}"

    def node(self, spec: str | None = None) -> str:
        """The pytest item name of the check on ``spec`` (default: the mutant): ``fn[SPEC-DTYPE-PARAMS]``."""
        area_fn = self.check.split("/", 1)[1]
        fn, _, params = area_fn.partition("[")
        parts = [spec or self.backend] + ([self.dtype] if self.dtype else []) + ([params.rstrip("]")] if params else [])
        return f"{fn}[{'-'.join(parts)}]"

    @property
    def select(self) -> str:
        """The ``-k`` selection that runs exactly the named check on this mutant."""
        return self.node() if self.kind == "run" else ""


NORMAL = "init_schemes/test_random_scheme[normal-0_1]"
UNIFORM01 = "init_schemes/test_random_scheme[uniform-0_1]"
UNIFORM = "init_schemes/test_random_scheme[uniform-m3_5]"
TRUNC = "init_schemes/test_random_scheme[trunc_normal-default]"
CONV_GROUPS = "module_defaults/test_random_default[Conv2d-weight-in_channels8-out_channels4096-kernel_size3-groups2]"

MUTANTS: list[Mutant] = [
    # -- synthetic defects at the design sizes (tests/faulty/init_adapters.py) ----------------------------------------
    Mutant("faulty-std:cpu", INIT, "design", "normal std x 1.01 (1% scale error)", NORMAL, "float32", "variance"),
    Mutant("faulty-shift:cpu", INIT, "design", "normal mean shifted by +0.01 std", NORMAL, "float32", "mean"),
    Mutant("faulty-bound:cpu", INIT, "design", "uniform range 1% wider than asked", UNIFORM, "float32", "support"),
    Mutant("faulty-fanswap:cpu", INIT, "design", "kaiming uses fan_out for fan_in",
           "init_schemes/test_random_scheme[kaiming_uniform-fan_in-relu]", "float32", "variance"),
    Mutant("faulty-nogain:cpu", INIT, "design", "kaiming forgets the nonlinearity's gain",
           "init_schemes/test_random_scheme[kaiming_normal-fan_in-relu]", "float32", "variance"),
    Mutant("faulty-clipped:cpu", INIT, "design", "normal clipped at +-3 std", NORMAL, "float32", "tail_upper"),
    Mutant("faulty-constant:cpu", INIT, "design", "initializers return a constant tensor", NORMAL, "float32",
           "not_constant"),
    Mutant("faulty-bf16round:cpu", INIT, "design", "bfloat16 normal rounded toward zero, not to nearest", NORMAL,
           "bfloat16", "chi2"),
    # -- distributions (tests/faulty/distribution_adapters.py) --------------------------------------------------------
    Mutant("faulty-range-ignored:cpu", DIST, "candle #578", "rand(lo, up) ignores the range: always U(0, 1)",
           UNIFORM, "float32", "ks"),
    Mutant("faulty-logistic-normal:cpu", DIST, "pytorch #115325",
           "randn distribution differs (logistic shape, mean 0 and std 1 exact)", NORMAL, "float32", "ks"),
    Mutant("faulty-open-bound:cpu", DIST, "pytorch #197079, #96947",
           "16-bit rand returns the excluded upper bound 1.0", UNIFORM01, "bfloat16", "support"),
    Mutant("faulty-trunc-bf16:cpu", DIST, "pytorch #145498",
           "bfloat16 trunc_normal quantized by a bfloat16 inverse CDF, mass piled at the bounds", TRUNC, "bfloat16",
           "chi2"),
    Mutant("faulty-groups-ignored:cpu", DIST, "MLX #4536",
           "grouped conv default init ignores groups in fan_in (bound sqrt(groups) too narrow)", CONV_GROUPS,
           "float32", "variance"),
    Mutant("faulty-fp16-inf:cpu", DIST, "MLX #642", "float16 normal returns -inf (erfinv of a uniform rounded to -1)",
           NORMAL, "float16", "support"),
    # -- activations (tests/faulty/activation_adapters.py, activation_bugs.py) ----------------------------------------
    Mutant("faulty-silu-div:cpu", ACT, "candle #2082", "SiLU backward via silu(x)/x: NaN at x = 0",
           "activations/test_silu_grad_at_signed_zero", "float32", "grad_at_zero"),
    Mutant("faulty-sigmoid-exp:cpu", ACT, "candle #1722", "sigmoid gradient through exp/recip: NaN at x = -548",
           "activations/test_finite[sigmoid]", "float32", "finite"),
    Mutant("faulty-sigmoid-flush:cpu", ACT, "MLX #2593", "float16 sigmoid returns 0 for x < -10",
           "activations/test_accuracy[sigmoid]", "float16", "ulp"),
    Mutant("faulty-sigmoid-zero-inf:cpu", ACT2, "tinygrad #1113",
           "sigmoid backward exp(-x) * s^2: -0 * inf = NaN for negative x", "activations/test_finite[sigmoid]",
           "float32", "finite"),
    Mutant("faulty-gelu-tanh-fast:cpu", ACT2, "pytorch #186278",
           "bfloat16 gelu(tanh) NaN for x >= ~10 (fast tanh overflows)", "activations/test_finite[gelu_tanh]",
           "bfloat16", "finite"),
    Mutant("faulty-strides-ignored:cpu", ACT2, "pytorch #139006, #98212, #131736",
           "silu/gelu/softplus wrong on a transposed (non-contiguous) input",
           "activations/test_non_contiguous[silu-transposed]", "float32", "layout",
           reference="torch:cpu"),  # the numpy reference has no strides: its non-contiguous checks skip
    Mutant("faulty-gelu-half-crash:cpu", ACT2, "pytorch #86218, #101946", "gelu raises in float16 (crash, not skip)",
           "activations/test_finite[gelu]", "float16", None),
    Mutant("faulty-silu-inf-nan:cpu", ACT2, "pytorch #160876", "silu(-inf) = NaN (x * sigmoid(x) = -inf * 0)",
           "activations/test_limits_at_inf[silu]", "float32", "limit", strict=True),
    Mutant("faulty-silu-tanh-f64:cpu", ACT2, "JAX #39798",
           "float64 grad silu(-709) = 0 instead of -8.6e-306 (sigmoid via tanh)", "activations/test_accuracy[silu]",
           "float64", "ulp"),
    # -- seeds and RNG streams (tests/faulty/seed_adapters.py, rng_bugs.py) -------------------------------------------
    Mutant("faulty-shared-state:cpu", SEED, "candle #1931",
           "every draw restarts from one fixed state: two Linear layers get the same bias",
           "seeds/test_layers_independent", "float32", "distinct"),
    Mutant("faulty-stuck-middle:cpu", SEED, "candle #1931", "element N/2 of even-length tensors always 0",
           "seeds/test_every_index_varies[sample-uniform]", "float32", "stuck_positions"),
    Mutant("faulty-identical-draws:cpu", SEED, "pytorch #78009, #78110", "randn returns the same tensor on every call",
           "seeds/test_successive_draws_differ[sample-normal]", "float32", "distinct"),
    Mutant("faulty-equal-slices:cpu", SEED, "pytorch #147624", "randn of rank > 4: x[0] == x[1]",
           "seeds/test_slices_differ[rank5-normal]", "float32", "distinct"),
    Mutant("faulty-lost-offset:cpu", SEED, "pytorch #130613", "restoring the RNG state loses the offset",
           "rng_state/test_restore_resumes_stream[uniform]", "float32", "bitwise_equal"),
    Mutant("faulty-seed-ignored:cpu", RNG, "pytorch #84288, #84516", "manual_seed does not seed the generator",
           "seeds/test_reseed_reproduces[sample-uniform]", "float32", "bitwise_equal"),
    Mutant("faulty-fork-first-draw:cpu", RNG, "pytorch #124833",
           "the RNG state does not advance on the first draw inside fork_rng",
           "rng_state/test_state_advances_in_fork_rng[normal]", "float32", "state_advances"),
    Mutant("faulty-realized-together:cpu", RNG, "tinygrad #16520, #9108",
           "draws realized together repeat (counter advanced once per realization)",
           "seeds/test_successive_draws_differ[sample-uniform]", "float32", "distinct"),
    # -- tinygrad (tests/faulty/tinygrad_adapters.py) -----------------------------------------------------------------
    Mutant("tinygrad-faulty-lazy:cpu", TINYGRAD, "tinygrad #16520",
           "draws double-buffered and realized newest-first: each call returns the next draw's values, successive "
           "draws repeat", "seeds/test_successive_draws_differ[sample-uniform]", "float32", "distinct",
           reference="tinygrad:cpu"),
    Mutant("tinygrad-faulty-truncate:cpu", TINYGRAD, "design",
           "bfloat16 init narrowed from float32 by dropping the low 16 bits (round toward zero) instead of "
           ".cast(dtypes.bfloat16)", NORMAL, "bfloat16", "chi2", reference="tinygrad:cpu"),
    # -- Flax and Equinox (tests/faulty/flax_adapters.py) -------------------------------------------------------------
    Mutant("flax-faulty-groups-ignored:cpu", FLAX, "MLX #4536",
           "grouped nnx.Conv kernel_init takes LeCun's fan_in over all input channels (feature_group_count ignored)",
           CONV_GROUPS, "float32", "variance", reference="flax:cpu"),
    Mutant("equinox-faulty-key-reuse:cpu", FLAX, "candle #1931",
           "one PRNG key reused for every eqx.nn layer (never split): two Linear layers identical",
           "seeds/test_layers_independent", "float32", "distinct", reference="equinox:cpu"),
    # -- Keras 3 (tests/faulty/keras_adapters.py) ---------------------------------------------------------------------
    Mutant("keras-faulty-shared-init:cpu", KERAS, "candle #1931",
           "every Dense/Conv kernel from one shared GlorotUniform(seed=1337) instance: identical layers in every run",
           "seeds/test_successive_draws_differ[module-Linear]", "float32", "distinct", reference="keras-jax:cpu"),
    Mutant("keras-faulty-shared-init:cpu", KERAS, "candle #1931",
           "every Dense/Conv kernel from one shared GlorotUniform(seed=1337) instance: identical layers",
           "seeds/test_layers_independent", "float32", "distinct", reference="keras-jax:cpu"),
    Mutant("keras-faulty-frozen-seedgen:cpu", KERAS, "pytorch #78009",
           "a SeedGenerator-seeded initializer frozen to its first seed: one shared instance repeats itself",
           "initializer_instances/test_shared_instance_layers[generator]", "float32", "distinct",
           reference="keras-jax:cpu"),
    Mutant("keras-faulty-frozen-seedgen:cpu", KERAS, "pytorch #78009",
           "a SeedGenerator-seeded initializer frozen to its first seed: calls repeat",
           "initializer_instances/test_instance_reuse[glorot_uniform-generator]", "float32", "distinct",
           reference="keras-jax:cpu"),
    Mutant("keras-faulty-advancing-seed:cpu", KERAS, "design",
           "an int-seeded initializer instance advances like a SeedGenerator: calls differ, against Keras's docs",
           "initializer_instances/test_instance_reuse[glorot_uniform-int]", "float32", "bitwise_equal",
           reference="keras-jax:cpu"),
    Mutant("keras-faulty-advancing-seed:cpu", KERAS, "design",
           "an int-seeded initializer instance advances like a SeedGenerator: layers sharing it differ",
           "initializer_instances/test_shared_instance_layers[int]", "float32", "bitwise_equal",
           reference="keras-jax:cpu"),
    # -- resume and checkpoints (tests/faulty/training.py, torch) -----------------------------------------------------
    Mutant("faulty-resume-epoch0:cpu", TRAIN, "ms-swift #10050", "resume replays epoch 0's data order",
           "checkpoints/test_resume_bit_exact", None, "batch_order", reference="torch:cpu"),
    Mutant("faulty-resume-reseed:cpu", TRAIN, "ms-swift PR #9935", "seed reset after the RNG states were restored",
           "checkpoints/test_resume_bit_exact", None, "dropout_masks", reference="torch:cpu"),
    Mutant("faulty-resume-no-rng:cpu", TRAIN, "ms-swift PR #9935",
           "safetensors-only checkpoint: RNG state dropped on resume", "checkpoints/test_resume_bit_exact", None,
           "dropout_masks", reference="torch:cpu"),
    Mutant("faulty-load-garbage:cpu", TRAIN, "transformers #28122",
           "renamed keys skipped on load keep uninitialized memory (~1e37)",
           "checkpoints/test_round_trip[gpt2-torch]", "float32", "bitwise", reference="torch:cpu"),
    Mutant("faulty-load-untied:cpu", TRAIN, "accelerate #1197", "tied weights become two tensors after load",
           "checkpoints/test_round_trip[tiny_tied-torch]", "float32", "aliasing", reference="torch:cpu"),
    Mutant("faulty-load-meta-buffers:cpu", TRAIN, "torchtitan #3775, #4783",
           "meta -> to_empty leaves non-persistent buffers (RoPE) uninitialized",
           "checkpoints/test_round_trip[llama-torch]", "float32", "nonpersistent", reference="torch:cpu"),
    # -- model init (tests/faulty/models.py, conformance audit) -------------------------------------------------------
    Mutant("tests.faulty.models:litgpt_reset_skipped", MODELS, "litgpt #1150 (PR #1162)",
           "pretraining model never initialized (empty init; reset_parameters not called)",
           "audit[litgpt_pretrain]", "float32", "uninitialized", kind="audit",
           reference="conformance.backends.torch.models:llama", audit_args=("--config", "naming=litgpt")),
]


def by_backend() -> dict[str, list[Mutant]]:
    out: dict[str, list[Mutant]] = {}
    for m in MUTANTS:
        out.setdefault(m.backend, []).append(m)
    return out


def upstream_classes() -> list[str]:
    """Distinct upstream bug classes reproduced (the first id of each mutant's ``upstream``), design ones excluded."""
    seen: list[str] = []
    for m in MUTANTS:
        if m.upstream != "design" and m.upstream not in seen:
            seen.append(m.upstream)
    return seen
