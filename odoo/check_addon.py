"""Static checks of Odoo addons that need no Odoo: every Python file compiles, every XML
file parses, the manifest is a literal dict for Odoo 18 whose data files all exist, every
asset it declares exists, the access CSV names models the addon defines, hooks named in the
manifest exist in __init__.py, no JS file is a legacy `odoo.define` module.

Usage: python3 odoo/check_addon.py odoo/payment_klarna [odoo/other_addon ...]
"""
import ast
import pathlib
import sys
import xml.etree.ElementTree as ET


def check(addon: pathlib.Path) -> list[str]:
    problems = []
    manifest_path = addon / '__manifest__.py'
    try:
        manifest = ast.literal_eval(manifest_path.read_text(encoding='utf-8'))
    except (OSError, ValueError, SyntaxError) as e:
        return [f'{manifest_path}: not a literal dict ({e})']
    if not str(manifest.get('version', '')).startswith('18.0.'):
        problems.append(f"{manifest_path}: version {manifest.get('version')!r} is not 18.0.x.y.z")
    for key in ('name', 'depends', 'license'):
        if key not in manifest:
            problems.append(f'{manifest_path}: missing {key!r}')
    for entry in manifest.get('data', []) + manifest.get('demo', []):
        if not (addon / entry).is_file():
            problems.append(f'{manifest_path}: data file {entry} does not exist')
    for bundle, files in manifest.get('assets', {}).items():
        for entry in files:
            if not (addon.parent / entry).is_file():
                problems.append(f'{manifest_path}: asset {entry} ({bundle}) does not exist')
    init = (addon / '__init__.py').read_text(encoding='utf-8') if (addon / '__init__.py').is_file() else ''
    for hook in ('post_init_hook', 'uninstall_hook', 'pre_init_hook'):
        if hook in manifest and f'def {manifest[hook]}(' not in init:
            problems.append(f'{manifest_path}: {hook} {manifest[hook]!r} is not defined in __init__.py')
    for path in sorted(addon.rglob('*.js')):
        if 'static/src/widget' in str(path):
            continue  # the built widget bundle
        if 'odoo.define(' in path.read_text(encoding='utf-8'):
            problems.append(f'{path}: a legacy odoo.define module (Odoo 18 wants ES modules)')
    csv_path = addon / 'security' / 'ir.model.access.csv'
    if csv_path.is_file():
        defined = set()
        for py in addon.rglob('*.py'):
            for name in __import__('re').findall(r"_name = '([\w.]+)'", py.read_text(encoding='utf-8')):
                defined.add('model_' + name.replace('.', '_'))
        for line in csv_path.read_text(encoding='utf-8').splitlines()[1:]:
            if line.strip():
                model = line.split(',')[2]
                if model not in defined:
                    problems.append(f'{csv_path}: {model} is not a model this addon defines')
    for path in sorted(addon.rglob('*.py')):
        try:
            compile(path.read_text(encoding='utf-8'), str(path), 'exec')
        except SyntaxError as e:
            problems.append(f'{path}:{e.lineno}: {e.msg}')
    for path in sorted(addon.rglob('*.xml')):
        try:
            ET.parse(path)
        except ET.ParseError as e:
            problems.append(f'{path}: {e}')
    return problems


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    failed = False
    for arg in sys.argv[1:]:
        addon = pathlib.Path(arg)
        problems = check(addon)
        for p in problems:
            print(p)
        files = sum(1 for _ in addon.rglob('*') if _.suffix in ('.py', '.xml', '.js', '.csv'))
        print(f'{addon}: {files} files checked, {len(problems)} problems')
        failed = failed or bool(problems)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
