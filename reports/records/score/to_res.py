# The authors' res_*.pt layout of one of this pipeline's sets: {'data': [[images, labels]], 'accs_all_exps': {...}}
import sys
import numpy as np, torch
src, dst = sys.argv[1], sys.argv[2]
z = np.load(src)
torch.save({"data": [[torch.from_numpy(z["images"]), torch.from_numpy(z["labels"]).long()]],
            "accs_all_exps": {"ConvNet": []}}, dst)
print(dst, tuple(z["images"].shape), z["labels"].tolist())
