"""Built-in generation strategies and components, registered like third-party plugins.

`register_builtins` is the hook named by robustqa's own entry point in the `robustqa.strategies` group.
"""

if __name__ != "robustqa.strategies":  # pragma: no cover - the guard itself is tested from a subprocess
    # PyPI has an unrelated top-level `strategies` package; this folder must only ever be robustqa.strategies.
    raise ImportError("import robustqa.strategies, not strategies: the folder is installed as robustqa.strategies")


def register_builtins(registry) -> None:
    from .context_answerer import ContextAnswerer
    from .naive import make_naive
    from .seed_prompts import SeedPromptWriter
    from .token_window import TokenWindowSelector

    registry.strategy(
        "naive", make_naive, help="Cartridges self-study baseline: random token window, seed prompt, 2 LM calls"
    )
    registry.component("selector", "token_window", TokenWindowSelector, help="random token window + seed prompt")
    registry.component("question_writer", "seed_prompt", SeedPromptWriter, help="Cartridges model call A")
    registry.component("answerer", "context", ContextAnswerer, help="answer from the context (call B)")

    from .consistency import Consistency
    from .instruction_filter import InstructionFilter
    from .robust import make_robust, make_stratified
    from .sanitizer import Sanitizer
    from .stratified import StratifiedSelector
    from .targeted_writer import TargetedQuestionWriter
    from .verifier import Verifier

    registry.strategy(
        "stratified", make_stratified, help="fixed target spans over strata, targeted question; 2 LM calls"
    )
    registry.strategy(
        "robust",
        make_robust,
        help="sanitizer + instruction filter + stratified + answer-aware questions + grounded answers (any teacher)",
    )
    registry.component("selector", "stratified", StratifiedSelector, help="fixed target spans over strata")
    registry.component("question_writer", "targeted", TargetedQuestionWriter, help="a question on the target")
    registry.component("span_filter", "sanitizer", Sanitizer, help="boilerplate: trafilatura + line rules")
    registry.component("span_filter", "instruction", InstructionFilter, help="quarantine instructions")
    registry.component("filter", "verifier", Verifier, help="answer support in the target (+1 LM call)")
    registry.component("filter", "consistency", Consistency, help="majority of k sampled answers")

    from .answer_aware_writer import AnswerAwareQuestionWriter
    from .grounded_answer import GroundedAnswer

    registry.component(
        "question_writer", "answer_aware", AnswerAwareQuestionWriter, help="answer span first, then its question"
    )
    registry.component(
        "filter", "grounded_answer", GroundedAnswer, help="abstractive where it verifies, else a span of the target"
    )
