"""What each scheme promises, written from its definition (docs and papers), with citations."""
