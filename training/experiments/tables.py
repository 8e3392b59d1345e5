"""The markdown tables and notes of the results page."""



def format_value(value, digits=4):
    if value is None:
        return "—"
    if isinstance(value, (int, str)):
        return str(value)
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.{digits}g}"


def markdown_table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def rank_table(rows, extra=()):
    """label | seed | effective rank | entropy rank | eval MSE | extra columns."""
    header = ["run", "seed", "effective rank", "entropy rank", "eval MSE"] + [name for name, _ in extra]
    body = [
        [row["label"], row["seed"], row["effective_rank"], format_value(row["entropy_rank"], 3),
         format_value(row["mse"])] + [format_value(get(row)) for _, get in extra]
        for row in rows
    ]
    return markdown_table(header, body)


def fid_note(rows):
    counts = {}  # dataset → the FID set sizes of its runs
    for row in rows:
        if row.get("fid_num_images"):
            counts.setdefault(row["config"]["dataset"], set()).add(row["fid_num_images"])
    sizes = [", ".join(map(str, sorted(n))) + (f" ({name})" if len(counts) > 1 else "")
             for name, n in counts.items()]
    return (f"FID: a domain feature CNN trained on the dataset's labels/factors (one network per "
            f"dataset, shared by all runs), N = {' / '.join(sizes)} eval images against "
            "as many generated ones, samplers fitted on the codes of those eval images, seed 0; "
            "lower is better, comparable only within this page (docs/evaluation.md).")
