"Convert a jupytext percent script into a clean notebook in nbs/: `python tools/py2nb.py SRC.py nbs/NN_name.ipynb`."
import json, subprocess, sys
from pathlib import Path

src, dest = sys.argv[1], sys.argv[2]
exists = Path(dest).exists() # update in place: unchanged cells keep their ids, so diffs stay small
subprocess.run(["jupytext", "--quiet", *(["--update"] if exists else []), "--to", "ipynb", "--output", dest, src], check=True)
nb = json.load(open(dest))
nb["metadata"] = {"kernelspec": {"display_name": "python3", "language": "python", "name": "python3"}}
with open(dest, "w") as f: json.dump(nb, f, indent=1, ensure_ascii=False); f.write("\n")
subprocess.run(["nbdev_clean", "--fname", dest], check=True)
