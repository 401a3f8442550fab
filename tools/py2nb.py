"Convert a jupytext percent script into a clean notebook in nbs/: `python tools/py2nb.py SRC.py nbs/NN_name.ipynb`."
import json, subprocess, sys

src, dest = sys.argv[1], sys.argv[2]
subprocess.run(["jupytext", "--quiet", "--to", "ipynb", "--output", dest, src], check=True)
nb = json.load(open(dest))
nb["metadata"] = {"kernelspec": {"display_name": "python3", "language": "python", "name": "python3"}}
with open(dest, "w") as f: json.dump(nb, f, indent=1, ensure_ascii=False); f.write("\n")
subprocess.run(["nbdev_clean", "--fname", dest], check=True)
