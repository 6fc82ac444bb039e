"""Named initializers (he/glorot/lecun ...) against the paper and each framework's own docs: ``spec`` holds the
entries with their citations."""
