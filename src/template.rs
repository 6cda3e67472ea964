//! Rendering prompts: the five user turns (`prompts/templates/*.jinja`: personas,
//! multilingual, judge, and the two free-text ones of `run --mode generate`) through one
//! rendering path, `TurnTemplate::render`, and the model's own chat template (GGUF
//! `tokenizer.chat_template`), both with minijinja.

use crate::prompts::PromptItem;
use crate::{Error, Result};
use minijinja::{context, Environment};
use serde::Serialize;
use std::collections::BTreeMap;

const PLAIN_CHAT_TEMPLATE: &str = include_str!("../prompts/templates/plain.jinja");

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

/// A chat template ready to render conversations into the model's prompt text.
pub struct ChatTemplate {
    env: Environment<'static>,
    /// True when the model brought its own template; false for the documented plain format.
    pub from_model: bool,
    bos_token: String,
    eos_token: String,
}

#[derive(Serialize)]
struct Message<'a> {
    role: &'a str,
    content: &'a str,
}

impl ChatTemplate {
    /// `template`: the model's Jinja chat template, or None for prompts/templates/plain.jinja.
    pub fn new(template: Option<&str>, bos_token: &str, eos_token: &str) -> Result<Self> {
        let mut env = Environment::new();
        // Hugging Face renders chat templates with these jinja2 settings; templates rely on them.
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_unknown_method_callback(crate::template_limits::unknown_method_callback);
        // The template is the model file's code: fuel, width and output limits.
        crate::template_limits::install(&mut env);
        env.add_function(
            "raise_exception",
            |msg: String| -> std::result::Result<String, minijinja::Error> {
                Err(minijinja::Error::new(
                    minijinja::ErrorKind::InvalidOperation,
                    msg,
                ))
            },
        );
        let source = template.unwrap_or(PLAIN_CHAT_TEMPLATE).to_string();
        env.add_template_owned("chat", source)
            .map_err(|e| Error::Template(format!("cannot compile the chat template: {e:#}")))?;
        Ok(Self {
            env,
            from_model: template.is_some(),
            bos_token: bos_token.to_string(),
            eos_token: eos_token.to_string(),
        })
    }

    /// One user turn followed by the opening of the assistant's turn.
    pub fn render_user_turn(&self, content: &str) -> Result<String> {
        self.render_turn(None, content)
    }

    /// A system turn (`run --system`), when given, then one user turn and the opening of the
    /// assistant's turn, as transformers' `apply_chat_template` renders the two messages: a
    /// template without a system role either folds it into the first user turn itself
    /// (Gemma 3) or raises (Gemma 1 and 2), which is an error here too. A template that
    /// silently drops the system text is refused rather than run without it.
    pub fn render_turn(&self, system: Option<&str>, content: &str) -> Result<String> {
        let mut messages = Vec::with_capacity(2);
        if let Some(system) = system {
            messages.push(Message {
                role: "system",
                content: system,
            });
        }
        messages.push(Message {
            role: "user",
            content,
        });
        let text = self.render_messages(&messages).map_err(|e| match system {
            Some(_) => Error::Template(format!(
                "--system: the model's chat template does not take a system turn: {e}"
            )),
            None => e,
        })?;
        if let Some(system) = system.filter(|s| !text.contains(s.trim())) {
            return Err(Error::Template(format!(
                "--system: the model's chat template dropped the system text {system:?} \
                 from the prompt"
            )));
        }
        Ok(text)
    }

    /// Renders the messages under the template limits (crate::template_limits): fuel bounds
    /// the work, the capped output bounds the prompt's size.
    fn render_messages(&self, messages: &[Message]) -> Result<String> {
        let mut out = crate::template_limits::CappedOutput::default();
        let rendered = self.env.get_template("chat").and_then(|t| {
            t.render_captured_to(
                context! {
                    messages => messages,
                    add_generation_prompt => true,
                    bos_token => self.bos_token,
                    eos_token => self.eos_token,
                },
                &mut out,
            )
            .map(drop)
        });
        match rendered {
            Ok(_) => String::from_utf8(out.bytes)
                .map_err(|_| Error::Template("the rendered prompt is not UTF-8".into())),
            Err(_) if out.overflowed => Err(Error::Template(format!(
                "the rendered prompt exceeds {} bytes",
                crate::template_limits::MAX_OUTPUT_BYTES
            ))),
            Err(e) => Err(Error::Template(format!("{e:#}"))),
        }
    }
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

    #[test]
    fn chatml_template_renders_like_hf() {
        let t = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
        let chat = ChatTemplate::new(Some(t), "", "<|im_end|>").unwrap();
        assert_eq!(
            chat.render_user_turn("Hi").unwrap(),
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn plain_format_without_a_model_template() {
        let chat = ChatTemplate::new(None, "<bos>", "<eos>").unwrap();
        assert!(!chat.from_model);
        assert_eq!(
            chat.render_user_turn("Hi").unwrap(),
            "User: Hi\n\nAssistant:"
        );
    }

    #[test]
    fn raise_exception_is_an_error() {
        let chat =
            ChatTemplate::new(Some("{{ raise_exception('no system role') }}"), "", "").unwrap();
        let err = chat.render_user_turn("x").unwrap_err().to_string();
        assert!(err.contains("no system role"), "{err}");
    }
}
