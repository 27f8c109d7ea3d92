"""Static checks of an Odoo addon that need no Odoo: every Python file compiles, every XML
file parses, the manifest is a literal dict for Odoo 18 whose data files all exist.

Usage: python3 odoo/check_addon.py odoo/payment_klarna
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
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    addon = pathlib.Path(sys.argv[1])
    problems = check(addon)
    for p in problems:
        print(p)
    files = sum(1 for _ in addon.rglob('*') if _.suffix in ('.py', '.xml'))
    print(f'{addon}: {files} files checked, {len(problems)} problems')
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
