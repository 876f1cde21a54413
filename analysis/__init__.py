"""What came out of a sweep: the Parquet store (trainables.runs.store), loading into pandas (`load`), paper-style
tables (analysis.tables), plots (analysis.plots) and the report command (`python -m analysis report RUN_DIR`).

    import analysis
    t = analysis.load("runs/my_sweep", filters={"method": "balenas"})
    t.epochs, t["trials"], t.samples, t.selections, t.spec
    rows = analysis.paper_rows(t, rule="argmax", benchmark="nb201")  # packaged table, or a file
    print(analysis.to_markdown(rows))
    front = analysis.pareto_front(costs, accuracies)  # searches under a budget: analysis.tradeoff

matplotlib is imported only by analysis.plots / analysis.report (analysis.tradeoff when it draws), so
`import analysis` stays light.
"""

from analysis.frames import attach_ground_truth, op_probabilities
from analysis.load import TABLES, RunTables, load, read_table
from analysis.tables import paper_rows, rules, selections_frame, summarize, to_latex, to_markdown, write_paper_tables
from analysis.tradeoff import hypervolume, optimum_under_budget, pareto_front

__all__ = ["TABLES", "RunTables", "attach_ground_truth", "hypervolume", "load", "op_probabilities",
           "optimum_under_budget", "paper_rows", "pareto_front", "read_table", "rules", "selections_frame", "summarize",
           "to_latex", "to_markdown", "write_paper_tables"]
