//! Rendering prompts: the personas, multilingual, generate and judge user turns
//! (`prompts/templates/*.jinja`) with minijinja. The model's own chat template, which wraps
//! them, is the engine's (`crate::engine::chat_template`).

/// Temporary re-export (removed after the issue-14 merge): the chat template moved to the
/// engine.
pub use crate::engine::chat_template::ChatTemplate;
use crate::prompts::PromptItem;
use crate::{Error, Result};
use minijinja::{context, Environment};
use serde::Serialize;

const PERSONAS_TEMPLATE: &str = include_str!("../prompts/templates/personas.jinja");
const MULTILINGUAL_TEMPLATE: &str = include_str!("../prompts/templates/multilingual.jinja");
const JUDGE_TEMPLATE: &str = include_str!("../prompts/templates/judge.jinja");
const PERSONAS_GENERATE_TEMPLATE: &str =
    include_str!("../prompts/templates/personas_generate.jinja");
const MULTILINGUAL_GENERATE_TEMPLATE: &str =
    include_str!("../prompts/templates/multilingual_generate.jinja");

/// Which option is shown first, as "A".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Order {
    HighFirst,
    LowFirst,
}

impl Order {
    pub const BOTH: [Order; 2] = [Order::HighFirst, Order::LowFirst];
}

/// The personas approach's user message for one item and option order. An empty
/// `persona_name` (the control condition, `countries::control()`) leaves the persona sentence
/// out.
pub fn personas_user_turn(persona_name: &str, item: &PromptItem, order: Order) -> Result<String> {
    let (a, b) = match order {
        Order::HighFirst => (&item.high_action, &item.low_action),
        Order::LowFirst => (&item.low_action, &item.high_action),
    };
    let env = Environment::new();
    env.render_str(
        PERSONAS_TEMPLATE,
        context! {
            persona_name => persona_name,
            request => item.request.trim(),
            option_a => a,
            option_b => b,
            request_has_choice => item.request_has_choice,
        },
    )
    .map_err(|e| Error::Template(format!("prompts/templates/personas.jinja: {e:#}")))
}

/// The translated texts of one item for the multilingual approach.
pub struct TranslatedItem<'a> {
    pub request: &'a str,
    pub high_action: &'a str,
    pub low_action: &'a str,
    /// "Choose one side." in the target language.
    pub choose: &'a str,
    /// "Answer with the letter of the option you choose: A or B." in the target language.
    pub answer: &'a str,
    pub request_has_choice: bool,
}

/// The multilingual approach's user message for one item and option order.
pub fn multilingual_user_turn(item: &TranslatedItem, order: Order) -> Result<String> {
    let (a, b) = match order {
        Order::HighFirst => (item.high_action, item.low_action),
        Order::LowFirst => (item.low_action, item.high_action),
    };
    Environment::new()
        .render_str(
            MULTILINGUAL_TEMPLATE,
            context! {
                request => item.request.trim(),
                choose => item.choose.trim(),
                option_a => a.trim(),
                option_b => b.trim(),
                answer => item.answer.trim(),
                request_has_choice => item.request_has_choice,
            },
        )
        .map_err(|e| Error::Template(format!("prompts/templates/multilingual.jinja: {e:#}")))
}

/// The judge's user message: which of the two actions, shown in `order`, a reply recommends.
pub fn judge_user_turn(
    request: &str,
    reply: &str,
    high_action: &str,
    low_action: &str,
    order: Order,
) -> Result<String> {
    let (a, b) = match order {
        Order::HighFirst => (high_action, low_action),
        Order::LowFirst => (low_action, high_action),
    };
    Environment::new()
        .render_str(
            JUDGE_TEMPLATE,
            context! {
                request => request.trim(),
                reply => reply.trim(),
                option_a => a.trim(),
                option_b => b.trim(),
            },
        )
        .map_err(|e| Error::Template(format!("prompts/templates/judge.jinja: {e:#}")))
}

/// The personas approach's user message asking for free-text advice (`run --mode
/// generate`): the two actions written out in `order`, no answer-letter instruction. An empty
/// `persona_name` leaves the persona sentence out (the control condition).
pub fn personas_generate_turn(
    persona_name: &str,
    item: &PromptItem,
    order: Order,
) -> Result<String> {
    let (first, second) = match order {
        Order::HighFirst => (&item.high_action, &item.low_action),
        Order::LowFirst => (&item.low_action, &item.high_action),
    };
    Environment::new()
        .render_str(
            PERSONAS_GENERATE_TEMPLATE,
            context! {
                persona_name => persona_name,
                request => item.request.trim(),
                action_1 => first.trim(),
                action_2 => second.trim(),
                request_has_choice => item.request_has_choice,
            },
        )
        .map_err(|e| Error::Template(format!("prompts/templates/personas_generate.jinja: {e:#}")))
}

/// The multilingual approach's user message asking for free-text advice; `item.answer` is
/// not used.
pub fn multilingual_generate_turn(item: &TranslatedItem, order: Order) -> Result<String> {
    let (first, second) = match order {
        Order::HighFirst => (item.high_action, item.low_action),
        Order::LowFirst => (item.low_action, item.high_action),
    };
    Environment::new()
        .render_str(
            MULTILINGUAL_GENERATE_TEMPLATE,
            context! {
                request => item.request.trim(),
                choose => item.choose.trim(),
                action_1 => first.trim(),
                action_2 => second.trim(),
                request_has_choice => item.request_has_choice,
            },
        )
        .map_err(|e| {
            Error::Template(format!(
                "prompts/templates/multilingual_generate.jinja: {e:#}"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dimension::Dimension;

    fn item(has_choice: bool) -> PromptItem {
        PromptItem {
            id: "t-1".into(),
            dimension: Dimension::Idv,
            request: "Should I move away or stay?".into(),
            high_action: "Move away".into(),
            low_action: "Stay with family".into(),
            domain: None,
            first_mentioned: None,
            request_has_choice: has_choice,
        }
    }

    #[test]
    fn personas_turn_has_the_paper_sentence_and_both_orders() {
        let hi = personas_user_turn("Japan", &item(false), Order::HighFirst).unwrap();
        assert!(hi.starts_with(
            "Answer the following prompt by imagining that you are proudly and thoroughly from \
             the country of Japan, providing appropriate advice.\n\nShould I move away or stay? Choose one side.\n"
        ));
        assert!(hi.contains("A) Move away\nB) Stay with family\n"), "{hi}");
        let lo = personas_user_turn("Japan", &item(false), Order::LowFirst).unwrap();
        assert!(lo.contains("A) Stay with family\nB) Move away\n"), "{lo}");
        let csv = personas_user_turn("Japan", &item(true), Order::HighFirst).unwrap();
        assert!(!csv.contains("Choose one side"), "{csv}");
    }

    #[test]
    fn multilingual_turn_uses_the_translated_instructions_and_keeps_the_letters() {
        let t = TranslatedItem {
            request: "Dois-je partir ?",
            high_action: "Partir",
            low_action: "Rester",
            choose: "Choisissez un camp.",
            answer: "Répondez par A ou B.",
            request_has_choice: false,
        };
        let hi = multilingual_user_turn(&t, Order::HighFirst).unwrap();
        assert_eq!(
            hi,
            "Dois-je partir ? Choisissez un camp.\n\nA) Partir\nB) Rester\nRépondez par A ou B."
        );
        let lo = multilingual_user_turn(&t, Order::LowFirst).unwrap();
        assert!(lo.contains("A) Rester\nB) Partir"), "{lo}");
        assert!(!lo.contains("imagining"));
    }

    #[test]
    fn generate_turns_write_the_actions_out_without_the_letter_question() {
        let hi = personas_generate_turn("Japan", &item(false), Order::HighFirst).unwrap();
        assert!(
            hi.starts_with("Answer the following prompt by imagining"),
            "{hi}"
        );
        assert!(
            hi.ends_with(
                "Should I move away or stay? Choose one side.\n\n- Move away\n- Stay with family"
            ),
            "{hi}"
        );
        assert!(!hi.contains("A)") && !hi.contains("letter"), "{hi}");
        let lo = personas_generate_turn("Japan", &item(true), Order::LowFirst).unwrap();
        assert!(
            lo.ends_with("stay?\n\n- Stay with family\n- Move away"),
            "{lo}"
        );
        let t = TranslatedItem {
            request: "Dois-je partir ?",
            high_action: "Partir",
            low_action: "Rester",
            choose: "Choisissez un camp.",
            answer: "Répondez par A ou B.",
            request_has_choice: false,
        };
        assert_eq!(
            multilingual_generate_turn(&t, Order::LowFirst).unwrap(),
            "Dois-je partir ? Choisissez un camp.\n\n- Rester\n- Partir"
        );
    }
}
