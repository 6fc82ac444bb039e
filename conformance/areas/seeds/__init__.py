"""Seeds: reseeding reproduces, layers/draws/slices/processes/ranks differ or agree as they should
(``expect``)."""
