"""The shared kernel: the vocabulary every layer (gateway, workflows, activities) may import.

The failure taxonomy (`errors`), URL redaction (`redact`), payload bounds (`limits`), the
camelCase base model (`models`), the payload codec (`codec`), metrics and telemetry, and the
pure readers of an answer (`answers`, `responses`). Nothing here imports `workflows`,
`activities` or `gateway`, and what workflow code imports from here (`errors`, `redact`,
`limits`, `metrics`, `models`, `answers`, `responses`) loads no client library.
"""
