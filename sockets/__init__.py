"""Socket.IO adapter: the live chat, driving the same ChatService as REST."""
