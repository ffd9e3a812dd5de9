// The plain-text chat template (see chat.h).
#include "models/chat.h"

#include "src/util/error.h"

namespace qat {

std::string chat_prompt(const std::vector<ChatMessage>& messages) {
  std::string text;
  for (const ChatMessage& m : messages) {
    if (m.role == "system") text += m.content + "\n\n";
    else if (m.role == "user") text += "User: " + m.content + "\n";
    else if (m.role == "assistant") text += "Assistant: " + m.content + "\n";
    else fail("message role '", m.role, "': expected system, user or assistant");
  }
  return text + "Assistant:";
}

std::string chat_next_turn(const std::string& user_text) { return "\nUser: " + user_text + "\nAssistant:"; }

}  // namespace qat
