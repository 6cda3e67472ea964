//! Rendering prompts: the five user turns (`prompts/templates/*.jinja`: personas,
//! multilingual, judge, and the two free-text ones of `run --mode generate`) through one
//! rendering path, `TurnTemplate::render`, with minijinja. The model's own chat template,
//! which wraps them, is the engine's (`crate::engine::chat_template`).

use crate::prompts::PromptItem;
use crate::{Error, Result};
use minijinja::Environment;
use serde::Serialize;
use std::collections::BTreeMap;

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

/// A user turn's template: its file in prompts/templates/ and what it calls the two actions.
/// What else it reads (persona_name, request, reply, choose, answer, request_has_choice) is
/// in each file's header; it is handed all of `TurnTexts` and uses those.
#[derive(Debug, Clone, Copy)]
pub struct TurnTemplate {
    file: &'static str,
    source: &'static str,
    /// The two actions' variables, in the order shown: answer options (`option_a`,
    /// `option_b`) where the scorer reads a letter, a written-out list (`action_1`,
    /// `action_2`) where the model writes advice.
    actions: [&'static str; 2],
}

const OPTIONS: [&str; 2] = ["option_a", "option_b"];
const LISTED: [&str; 2] = ["action_1", "action_2"];

/// The personas approach's turn, read by its answer letter.
pub const PERSONAS: TurnTemplate = TurnTemplate {
    file: "personas.jinja",
    source: include_str!("../prompts/templates/personas.jinja"),
    actions: OPTIONS,
};
/// The multilingual approach's turn, read by its answer letter.
pub const MULTILINGUAL: TurnTemplate = TurnTemplate {
    file: "multilingual.jinja",
    source: include_str!("../prompts/templates/multilingual.jinja"),
    actions: OPTIONS,
};
/// The judge's turn: which of the two actions a reply recommends (A, B or Neither).
pub const JUDGE: TurnTemplate = TurnTemplate {
    file: "judge.jinja",
    source: include_str!("../prompts/templates/judge.jinja"),
    actions: OPTIONS,
};
/// The personas approach's turn asking for free-text advice.
pub const PERSONAS_GENERATE: TurnTemplate = TurnTemplate {
    file: "personas_generate.jinja",
    source: include_str!("../prompts/templates/personas_generate.jinja"),
    actions: LISTED,
};
/// The multilingual approach's turn asking for free-text advice.
pub const MULTILINGUAL_GENERATE: TurnTemplate = TurnTemplate {
    file: "multilingual_generate.jinja",
    source: include_str!("../prompts/templates/multilingual_generate.jinja"),
    actions: LISTED,
};

/// The texts a user turn is rendered from; a template reads those it names and the rest stay
/// empty. Every text but the persona name (the country table's) is trimmed.
#[derive(Debug, Clone, Copy, Default)]
pub struct TurnTexts<'a> {
    /// Empty leaves the persona sentence out (the control condition, `countries::control()`).
    pub persona_name: &'a str,
    pub request: &'a str,
    pub high_action: &'a str,
    pub low_action: &'a str,
    /// The request already ends with the paper's choose-a-side sentence.
    pub request_has_choice: bool,
    /// "Choose one side." in the target language (multilingual).
    pub choose: &'a str,
    /// "Answer with the letter of the option you choose: A or B." in the target language.
    pub answer: &'a str,
    /// The reply the judge reads.
    pub reply: &'a str,
}

impl<'a> TurnTexts<'a> {
    /// A prompt item's texts with the persona of `persona_name`.
    pub fn personas(persona_name: &'a str, item: &'a PromptItem) -> Self {
        Self {
            persona_name,
            request: &item.request,
            high_action: &item.high_action,
            low_action: &item.low_action,
            request_has_choice: item.request_has_choice,
            ..Self::default()
        }
    }

    /// A translated item's texts.
    pub fn translated(item: &TranslatedItem<'a>) -> Self {
        Self {
            request: item.request,
            high_action: item.high_action,
            low_action: item.low_action,
            request_has_choice: item.request_has_choice,
            choose: item.choose,
            answer: item.answer,
            ..Self::default()
        }
    }
}

impl TurnTemplate {
    /// The user turn of `texts` with the two actions shown in `order`.
    pub fn render(&self, texts: &TurnTexts, order: Order) -> Result<String> {
        let (first, second) = match order {
            Order::HighFirst => (texts.high_action, texts.low_action),
            Order::LowFirst => (texts.low_action, texts.high_action),
        };
        let mut vars: BTreeMap<&str, minijinja::Value> = BTreeMap::from([
            ("persona_name", texts.persona_name.into()),
            ("request", texts.request.trim().into()),
            ("reply", texts.reply.trim().into()),
            ("choose", texts.choose.trim().into()),
            ("answer", texts.answer.trim().into()),
            ("request_has_choice", texts.request_has_choice.into()),
        ]);
        vars.insert(self.actions[0], first.trim().into());
        vars.insert(self.actions[1], second.trim().into());
        Environment::new()
            .render_str(self.source, vars)
            .map_err(|e| Error::Template(format!("prompts/templates/{}: {e:#}", self.file)))
    }
}

/// The personas approach's user message for one item and option order. An empty
/// `persona_name` (the control condition, `countries::control()`) leaves the persona sentence
/// out.
pub fn personas_user_turn(persona_name: &str, item: &PromptItem, order: Order) -> Result<String> {
    PERSONAS.render(&TurnTexts::personas(persona_name, item), order)
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
    MULTILINGUAL.render(&TurnTexts::translated(item), order)
}

/// The judge's user message: which of the two actions, shown in `order`, a reply recommends.
pub fn judge_user_turn(
    request: &str,
    reply: &str,
    high_action: &str,
    low_action: &str,
    order: Order,
) -> Result<String> {
    let texts = TurnTexts {
        request,
        reply,
        high_action,
        low_action,
        ..TurnTexts::default()
    };
    JUDGE.render(&texts, order)
}

/// The personas approach's user message asking for free-text advice (`run --mode
/// generate`): the two actions written out in `order`, no answer-letter instruction. An empty
/// `persona_name` leaves the persona sentence out (the control condition).
pub fn personas_generate_turn(
    persona_name: &str,
    item: &PromptItem,
    order: Order,
) -> Result<String> {
    PERSONAS_GENERATE.render(&TurnTexts::personas(persona_name, item), order)
}

/// The multilingual approach's user message asking for free-text advice; `item.answer` is
/// not used.
pub fn multilingual_generate_turn(item: &TranslatedItem, order: Order) -> Result<String> {
    MULTILINGUAL_GENERATE.render(&TurnTexts::translated(item), order)
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

    #[test]
    fn every_turn_trims_its_texts_the_same_way() {
        // Whitespace around an action or the request, as a hand-written prompt set may carry:
        // every template shows the trimmed text (the personas turn once showed it as given).
        let mut padded = item(false);
        padded.request = "  Should I move away or stay?\n".into();
        padded.high_action = " Move away\n".into();
        padded.low_action = "Stay with family  ".into();
        for render in [personas_user_turn, personas_generate_turn] {
            assert_eq!(
                render("Japan", &padded, Order::HighFirst).unwrap(),
                render("Japan", &item(false), Order::HighFirst).unwrap()
            );
        }
        let reply = "\n Move away. \n";
        assert_eq!(
            judge_user_turn(
                &padded.request,
                reply,
                " Move away\n",
                " Stay ",
                Order::LowFirst
            )
            .unwrap(),
            judge_user_turn(
                "Should I move away or stay?",
                "Move away.",
                "Move away",
                "Stay",
                Order::LowFirst
            )
            .unwrap()
        );
        // Each template gets its own names for the two actions.
        let texts = TurnTexts::personas("", &padded);
        let listed = PERSONAS_GENERATE.render(&texts, Order::LowFirst).unwrap();
        assert!(
            listed.ends_with("- Stay with family\n- Move away"),
            "{listed:?}"
        );
        let lettered = PERSONAS.render(&texts, Order::LowFirst).unwrap();
        assert!(
            lettered.contains("A) Stay with family\nB) Move away\n"),
            "{lettered:?}"
        );
        assert!(
            !lettered.contains("imagining"),
            "control: no persona sentence"
        );
    }
}
