"""Evidence a month's figures can be checked with: ``pack`` writes it."""
