"""What every stage shares and nothing below it: the people's parameters and evidence, the person box, the device."""
