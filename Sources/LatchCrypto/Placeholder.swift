// Placeholder: replaced as soon as this target gets code.
