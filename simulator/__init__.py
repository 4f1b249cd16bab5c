"""A Twilio-faithful TwiML interpreter: text phone, scripted calls, load."""
