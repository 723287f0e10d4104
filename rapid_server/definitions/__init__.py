"""Definitions: what runs, read from an AWS SAM / CloudFormation / `cdk synth` template.

Never how it runs: this package produces the same `FunctionConfig` objects a rapidboot.toml gives, and
keeps each function's HTTP triggers (`Events`, `FunctionUrlConfig`) as data for a front door to read. Nothing
here is imported unless a template is used (PyYAML and aws-sam-translator are loaded lazily).
"""
