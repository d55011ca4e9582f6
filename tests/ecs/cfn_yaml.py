# SPDX-License-Identifier: Apache-2.0
"""A CloudFormation template (JSON or YAML) as the JSON value CloudFormation hands a macro: YAML
short-form tags (!Ref, !Sub, !GetAtt a.b, !If...) read as their long forms, scalars as the YAML
1.1 rules read them except timestamps (a template's dates stay the strings written)."""
import json

import yaml


class _Loader(yaml.SafeLoader):
    pass


def _tag(loader, suffix, node):
    fn = suffix if suffix in ("Ref", "Condition") else "Fn::" + suffix
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if fn == "Fn::GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {fn: value}


_Loader.add_multi_constructor("!", _tag)
_Loader.add_constructor("tag:yaml.org,2002:timestamp", yaml.SafeLoader.construct_yaml_str)


def load(path):
    with open(path) as f:
        text = f.read()
    if path.endswith((".yaml", ".yml")):
        return yaml.load(text, Loader=_Loader)
    return json.loads(text)
