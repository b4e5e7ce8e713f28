"""Print the catalog as a Markdown table (for the README): entry, family, model, data, method."""

from ppl_models.catalog import list_entries

print("| entry | family | what it fits | inference |")
print("|---|---|---|---|")
for c in list_entries():
    inf = c.inference
    method = inf.get("method", "nuts")
    detail = (f"{method}, {inf.get('num_chains', 4)} chains × {inf.get('num_warmup', 1000)} + {inf.get('num_samples', 1000)}"
              if method in ("nuts", "hmc") else f"{method}, {inf.get('num_steps', 5000)} steps")
    print(f"| `{c.name}` | {c.family} | {c.description} | {detail} |")
