"""Video tasks as big_vision's video transfers evaluate them: MSR-VTT, ActivityNet, VATEX, MSVD.

An example is `count` frames of its clip, `stride` frames apart from the first, a short clip
looped (harness/video.py); each frame is resized to 224 px (bilinear, no antialias:
`video_decode`) and encoded on its own, 256 image tokens per frame (4,096 for 16 frames).
Greedy. Captioning is scored with CIDEr (pycocoevalcap, PTB tokenizer) over all references,
QA with big_vision's `vqa` evaluator on one reference (exact, case-sensitive). Frame counts,
strides, prompts and decode lengths are each config's eval defaults (msrvtt_cap.py ...
msvd_qa.py; MSVD-QA's config samples 8 frames). big_vision's clip lists are not released (its
splits are subsets of the public ones), so no card number is reproduced exactly from public data.

Data: the hub copies carry the annotations and name the videos, not the videos' bytes; the
video files are local. `--data-dir DIR` reads DIR/<hub id>/<config>/<split>.jsonl whose `video`
column is a file path relative to the JSONL (or a parquet file with {bytes, path} cells):
- lmms-eval/VATEX [vatex_test] test: videoID, enCap [captions], video
- lmms-eval/ActivityNetQA test: question_id, video_name, question, answer, type, video
- no curated hub copy (local files under these names): msrvtt/caption test: video_id,
  captions, video; msrvtt/qa test: question_id, video_id, question, answer, video;
  activitynet/captions test: video_id, captions, video; msvd/qa test: question_id, video_id,
  question, answer, video
"""

from __future__ import annotations

from paligemma_eval.harness.registry import DatasetSource, Frames, Row, Task, register, text_len
from paligemma_eval.harness.scores import Ratio, Scores
from paligemma_eval.tasks.captioning import score_captions
from paligemma_eval.tasks.metrics.captioning import explain_cider
from paligemma_eval.tasks.metrics.exact_match import exact_match, explain_exact_match

VIDEO = "video"
COMMON = dict(image_column=VIDEO, resize="bilinear", groups=("video",))


def references(column: str):
    def target(row: Row) -> dict:
        refs = row[column] if isinstance(row[column], list) else [row[column]]
        if not refs:
            raise ValueError(f"no reference captions in {column!r}")
        return {"references": [str(r) for r in refs], "domain": None}
    return target


def answer(row: Row) -> str:
    return str(row["answer"])


def score_exact(ids: list[str], predictions: list[str], targets: list[str]) -> Scores:
    return Scores(ids, {"accuracy": Ratio.mean(
        [exact_match(p, t) for p, t in zip(predictions, targets)])})


def caption_task(name: str, source: DatasetSource, id_column: str, refs: str, frames: Frames,
                 max_new_tokens: int, description: str) -> Task:
    return Task(name=name, source=source, prompt="caption en", target=references(refs),
                scorer=score_captions, explain=explain_cider(), columns=(refs, VIDEO),
                id_column=id_column,
                frames=frames, **text_len(max_new_tokens), metric="cider",
                rule="CIDEr-D (pycocoevalcap, PTB tokenizer), greedy", description=description,
                **COMMON)


def qa_task(name: str, source: DatasetSource, frames: Frames, description: str) -> Task:
    return Task(name=name, source=source, prompt="answer en {question}", target=answer,
                scorer=score_exact, explain=explain_exact_match(),
                columns=("question", "answer", VIDEO),
                id_column="question_id", frames=frames, **text_len(64), metric="accuracy",
                rule="big_vision vqa evaluator: exact, case-sensitive match",
                description=description, **COMMON)


@register
def tasks() -> list[Task]:
    local = dict(local_only=True)
    return [
        caption_task("msrvtt_cap_test", DatasetSource("msrvtt/caption", "test", **local),
                     "video_id", "captions", Frames(16, 9), 32,
                     "MSR-VTT captioning test (local files)"),
        qa_task("msrvtt_qa_test", DatasetSource("msrvtt/qa", "test", **local), Frames(16, 9),
                "MSR-VTT QA test (local files)"),
        caption_task("activitynet_cap_test",
                     DatasetSource("activitynet/captions", "test", **local), "video_id",
                     "captions", Frames(16, 30), 64,
                     "ActivityNet captions test (local files; big_vision's clips are internal)"),
        qa_task("activitynet_qa_test", DatasetSource("lmms-eval/ActivityNetQA", "test",
                                                     aliases=("lmms-lab/ActivityNetQA",)),
                Frames(16, 70), "ActivityNet-QA test (videos as local files)"),
        caption_task("vatex_test", DatasetSource("lmms-eval/VATEX", "test", "vatex_test",
                                                 aliases=("lmms-lab/VATEX",)),
                     "videoID", "enCap", Frames(16, 7), 64,
                     "VATEX test, English captions (videos as local files)"),
        qa_task("msvd_qa_test", DatasetSource("msvd/qa", "test", **local), Frames(8, 26),
                "MSVD-QA test, 8 frames as its config (local files)"),
    ]
