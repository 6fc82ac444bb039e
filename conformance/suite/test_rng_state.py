"""RNG state: save/restore resumes the exact stream, the state advances on every draw, seeding
reaches every device, explicit generators are independent of the global stream.

Bugs behind these checks (``BUGS.md``, "Seeds and RNG streams"): pytorch #130613 (set_state lost
the Philox offset), #124833 (the state did not advance on the first draw after fork_rng),
#84288 (manual_seed did not seed the device).
"""

from __future__ import annotations

import pytest

from conformance.areas.rng_state import expect as R
from conformance.report.attachments import SeedContract
from conformance.stats import Verdict
from conformance.stats import independence as I


@pytest.mark.requires("rng_state")
@pytest.mark.parametrize("dist", sorted(R.DRAWS))
def test_restore_resumes_stream(backend, dtype, conformance, dist):
    """Draw twice, save the state, draw x, draw more, restore, draw y: x == y bit for bit."""
    draw = R.DRAWS[dist]
    backend.seed(conformance.seed)
    R.draw_all(draw, backend, dtype)
    R.draw_all(draw, backend, dtype)
    state = backend.rng_state()
    x = R.draw_all(draw, backend, dtype)
    R.draw_all(draw, backend, dtype)
    backend.set_rng_state(state)
    y = R.draw_all(draw, backend, dtype)
    conformance.expect(R.equal_all(x, y, f"{dist}: draw after saving the state (after 2 draws) vs after restoring it"),
                       "restoring the global state resumes the stream")


@pytest.mark.requires("rng_state", "generators")
@pytest.mark.parametrize("dist", sorted(R.DRAWS))
def test_restore_into_new_generator(backend, dtype, conformance, dist):
    """An explicit generator: two draws, save, draw x; a new generator object gets the state and draws y == x."""
    draw = R.DRAWS[dist]
    gen = backend.generator(conformance.seed)
    R.draw_all(draw, backend, dtype, gen)
    R.draw_all(draw, backend, dtype, gen)
    state = backend.rng_state(gen)
    x = R.draw_all(draw, backend, dtype, gen)
    fresh = backend.generator()
    backend.set_rng_state(state, fresh)
    y = R.draw_all(draw, backend, dtype, fresh)
    conformance.expect(R.equal_all(x, y, f"{dist}: draw after saving a generator's state vs from a new generator "
                                        "restored to it"), "restoring into a new generator resumes the stream")


@pytest.mark.requires("rng_state")
@pytest.mark.parametrize("dist", sorted(R.DRAWS))
def test_state_advances(backend, dtype, conformance, dist):
    """The state changes on every draw, after seeding and right after a restore."""
    draw = R.DRAWS[dist]
    backend.seed(conformance.seed)
    verdicts = R.advances(backend, draw, dtype, f"{dist} after seed")
    state = backend.rng_state()
    draw(backend, dtype, R.SHAPES[0])
    backend.set_rng_state(state)
    verdicts += R.advances(backend, draw, dtype, f"{dist} right after set_rng_state", steps=1)
    conformance.expect(verdicts, "the RNG state advances on every draw")


@pytest.mark.requires("rng_state")
@pytest.mark.parametrize("dist", sorted(R.DRAWS))
def test_state_advances_in_fork_rng(backend, dtype, conformance, dist):
    """Inside fork_rng the state changes on every draw, the first one included (pytorch #124833);
    leaving it restores the state from before it."""
    draw = R.DRAWS[dist]
    backend.seed(conformance.seed)
    draw(backend, dtype, R.SHAPES[1])
    outside = backend.rng_state()
    with backend.fork_rng():
        verdicts = R.advances(backend, draw, dtype, f"{dist} inside fork_rng")
    restored = backend.rng_state()
    verdicts.append(Verdict("fork_restores", restored == outside,
                            f"{dist}: leaving fork_rng {'restored' if restored == outside else 'did NOT restore'} "
                            "the state from before it", n=1))
    conformance.expect(verdicts, "the RNG state advances inside fork_rng and is restored after it")


@pytest.mark.requires("seed", "device_draws")
@pytest.mark.dtypes("float32")
def test_seed_reaches_every_device(backend, dtype, conformance):
    """seed(s) on the global API reproduces draws on every device it drives; another seed changes them."""
    shape = (32, 32)
    backend.seed(conformance.seed)
    first = backend.device_draws(shape)
    backend.seed(conformance.seed)
    again = backend.device_draws(shape)
    other_seed = (conformance.seed + 1) % 2**32
    backend.seed(other_seed)
    other = backend.device_draws(shape)
    verdicts = []
    for device in sorted(first):
        verdicts.append(I.bitwise_equal(first[device], again.get(device), f"{device}: draw after seed "
                                        f"{conformance.seed}, twice"))
        verdicts.append(I.distinct(first[device], other.get(device), f"{device}: seeds {conformance.seed} vs "
                                   f"{other_seed}"))
    for v in verdicts:
        v.observed.setdefault("devices", sorted(first))
    conformance.expect(verdicts, "the global seed seeds every device")


@pytest.mark.requires("rng_state", "generators")
@pytest.mark.parametrize("dist", sorted(R.DRAWS))
def test_generator_independent_of_global(backend, dtype, conformance, dist):
    """Draws from an explicit generator do not move the global stream, and global draws do not move it."""
    draw = R.DRAWS[dist]
    other_seed = (conformance.seed + 7) % 2**32
    backend.seed(conformance.seed)
    reference = [R.draw_all(draw, backend, dtype) for _ in range(2)]
    backend.seed(conformance.seed)
    first = R.draw_all(draw, backend, dtype)
    gen = backend.generator(other_seed)
    gen_draws = [R.draw_all(draw, backend, dtype, gen) for _ in range(2)]
    second = R.draw_all(draw, backend, dtype)
    verdicts = R.equal_all(reference[0] + reference[1], first + second,
                          f"{dist}: global stream with vs without generator draws in between")
    gen2 = backend.generator(other_seed)
    alone = [R.draw_all(draw, backend, dtype, gen2) for _ in range(2)]
    verdicts += R.equal_all(gen_draws[0] + gen_draws[1], alone[0] + alone[1],
                           f"{dist}: generator stream with vs without global draws in between")
    conformance.expect(verdicts, "explicit generators are independent of the global stream")


@pytest.mark.requires("rng_state", "generators")
@pytest.mark.parametrize("dist", sorted(R.DRAWS))
def test_generator_matches_global_seeding(backend, dtype, conformance, dist):
    """Where the backend promises it (contract ``generator_seeding``), generator(s) draws what seed(s) draws."""
    contract = backend.contracts.get("generator_seeding")
    if contract is None or contract.value != "matches_global":
        pytest.skip(f"{backend.spec} declares no generator_seeding contract; nothing to compare")
    draw = R.DRAWS[dist]
    backend.seed(conformance.seed)
    global_draws = R.draw_all(draw, backend, dtype) + R.draw_all(draw, backend, dtype)
    gen = backend.generator(conformance.seed)
    gen_draws = R.draw_all(draw, backend, dtype, gen) + R.draw_all(draw, backend, dtype, gen)
    verdicts = R.equal_all(global_draws, gen_draws, f"{dist}: seed({conformance.seed}) vs generator("
                                                   f"{conformance.seed})")
    same = all(v.passed for v in verdicts)
    verdicts[0].expected.update({"contract": contract.statement, "source": contract.source})
    conformance.attach(SeedContract("generator_seeding", contract.statement, contract.source, contract.value,
                                    f"generator(s) and seed(s) drew {'the same' if same else 'DIFFERENT'} "
                                    f"{dist} bits in {dtype}", consistent=same))
    conformance.expect(verdicts, "generator seeding matches global seeding (declared contract)")
