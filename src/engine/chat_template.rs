//! A model's own chat template (GGUF `tokenizer.chat_template`, a Hugging Face
//! `tokenizer_config.json`'s `chat_template`), or the documented plain format without one,
//! rendered with minijinja as transformers' `apply_chat_template` does, under the limits of
//! [`super::template_limits`] (the template is the model file's code).

use crate::{Error, Result};
use minijinja::{context, Environment};
use serde::Serialize;

/// The format of a model without a chat template: "User: …\n\nAssistant:".
const PLAIN_CHAT_TEMPLATE: &str = include_str!("../../prompts/templates/plain.jinja");

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
        env.set_unknown_method_callback(super::template_limits::unknown_method_callback);
        // The template is the model file's code: fuel, width and output limits.
        super::template_limits::install(&mut env);
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

    /// Renders the messages under the template limits (super::template_limits): fuel bounds
    /// the work, the capped output bounds the prompt's size.
    fn render_messages(&self, messages: &[Message]) -> Result<String> {
        let mut out = super::template_limits::CappedOutput::default();
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
                super::template_limits::MAX_OUTPUT_BYTES
            ))),
            Err(e) => Err(Error::Template(format!("{e:#}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
