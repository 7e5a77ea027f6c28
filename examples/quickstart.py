"""The seed's quick start, as written.

With ZHIPUAI_API_KEY set it runs on GLM-4. Without a key it stops with a message naming the offline model,
unless OPENAUTOGLM_FALLBACK_MODEL=local-auto is set (as `make demo` does), which runs it offline instead (the
embedded encoders, zero-shot with label descriptions and calibration; see docs/guide/nlp.md).

    .venv/bin/python examples/quickstart.py
"""

from pathlib import Path

from openautoglm import DataLoader, TaskPipeline

HERE = Path(__file__).resolve().parent

# Load the data
dataset = DataLoader.from_csv(HERE / "user_feedback.csv").load(columns=["text"])

# Build the pipeline
pipeline = TaskPipeline(task_type="text_classification", model="glm-4")
pipeline.configure(prompt_template="判断以下用户反馈的情感倾向:{text}", labels=["正面", "负面", "中性"])

# Run it
results = pipeline.run(dataset)

print(results)
print(results.frame[["row_id", "text", "prediction", "score", "status"]].head(10).to_string(index=False))
