// The chat template of bin/generate --chat and bin/serve's /v1/chat/completions: messages (role,
// content) -> the text the model continues. The project's models are trained on plain documents, so the
// template is plain text too (a GGUF's Jinja tokenizer.chat_template is not interpreted):
//   system     "{content}\n\n"
//   user       "User: {content}\n"
//   assistant  "Assistant: {content}\n"
//   then       "Assistant:"                 the generation prompt; the reply follows it
// A reply ends at the end-of-text token or at the stop string "\nUser:" (kChatStop).
#pragma once
#include <string>
#include <vector>

namespace qat {

struct ChatMessage {
  std::string role;  // "system", "user" or "assistant"
  std::string content;
};

inline constexpr const char* kChatStop = "\nUser:";

// The whole conversation with the generation prompt. A role other than the three: an Error naming it.
std::string chat_prompt(const std::vector<ChatMessage>& messages);
// One more user turn for a conversation already in the KV cache (bin/generate --chat's later turns).
std::string chat_next_turn(const std::string& user_text);

}  // namespace qat
