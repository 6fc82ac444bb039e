"""RNG state: save/restore resumes the exact stream, state advances on every draw, generator seeding contract
(``expect``)."""
