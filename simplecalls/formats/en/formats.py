# Front desks read dates as dd.mm.yyyy and times as HH:MM:SS in every language.
DATE_FORMAT = "d.m.Y"
TIME_FORMAT = "H:i:s"
DATETIME_FORMAT = "d.m.Y H:i:s"
SHORT_DATE_FORMAT = "d.m.Y"
SHORT_DATETIME_FORMAT = "d.m.Y H:i:s"
DATE_INPUT_FORMATS = ["%d.%m.%Y", "%Y-%m-%d"]
DATETIME_INPUT_FORMATS = ["%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%Y-%m-%d %H:%M:%S"]
